"""Phase-3 commands: `titan refscore <phase.toml>` and `titan run <phase.toml>` for an SFT/DPO phase.

    titan refscore engines/titan/phases/longctx_sft_dpo.toml          # once, from phase 2's weights
    titan run engines/titan/phases/longctx_sft_dpo.toml
    titan run engines/titan/phases/smoke_sft_dpo.toml --device cpu    # CPU smoke (tiny model)

Also runnable alone: `python -m datakit_titan.prefs.cli refscore|run ...`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from datakit.errors import UserError
from datakit_titan.prefs.phase import PrefsPhase, load_prefs_phase

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def load_reference_model(phase: PrefsPhase, checkpoint: Path, device: str):
    """The phase's model (its preset and RoPE) with the weights of `checkpoint` (a TorchTitan `step-N`
    folder, model keys at the top level as TorchTitan saves them), in eval mode."""
    import torch
    import torch.distributed.checkpoint as dcp

    from datakit_titan.prefs.config_registry import prefs_model_spec
    from datakit_titan.validate import model_vocab

    if device == "cpu":
        from datakit_titan import cpu

        cpu.enable()
    with torch.device("meta"):
        model = prefs_model_spec(phase, model_vocab(phase)).model.build()
    model.to_empty(device=device)
    with torch.no_grad():
        model.init_weights(buffer_device=None)  # builds the RoPE cache for this phase's RoPE
    state = model.state_dict()
    dcp.load(state, checkpoint_id=str(checkpoint))
    model.load_state_dict(state)
    if device != "cpu" and "bfloat16" in (phase.parallel.param_dtype, phase.parallel.mixed_precision):
        for p in model.parameters():  # the training run's compute dtype (the RoPE cache stays complex)
            p.data = p.data.to(torch.bfloat16)
    return model.eval()


def refscore_phase(path: str | Path, *, device: str = "cuda", batch_pairs: int = 4, progress: bool = True) -> dict:
    """Compute the reference log-probs a phase needs, from its `init_from` checkpoint, with its RoPE."""
    from datakit_titan.prefs.config_registry import reference_for
    from datakit_titan.prefs.refscore import compute_refscores, titan_forward
    from datakit_titan.validate import check_phase

    phase = load_prefs_phase(path)
    if phase.phase.loss not in ("sft_dpo", "dpo"):
        raise UserError(f"loss {phase.phase.loss!r} uses no reference model", file=phase.path, field="phase.loss",
                        fix="refscore is for loss = \"sft_dpo\" or \"dpo\"")
    check_phase(phase, device="cpu")  # mixture complete and intact, vocab, init_from exists
    ref = reference_for(phase)
    model = load_reference_model(phase, Path(ref["checkpoint"]), device)
    model._skip_lm_head = True  # project completion positions only, as the trainer does
    return compute_refscores(titan_forward(model), phase.phase.mixture, checkpoint=ref["checkpoint"], checkpoint_sha=ref["checkpoint_sha256"],
                             rope=ref["rope"], batch_pairs=batch_pairs, device=device, progress=progress, lm_head=model.lm_head)


def run_prefs_phase(path: str | Path, *, device: str = "cuda", nproc: int = 1, max_steps: int | None = None,
                    extra: list[str] | None = None, stdout=None, wandb: str | None = None, nodes=None) -> PrefsPhase:
    """Check a phase-3 phase (mixture, vocab, init_from, seq_len, reference log-probs), then run it
    with TorchTitan (torchrun when nproc > 1). Rerunning resumes from the newest checkpoint.
    wandb: offline | online | off, overriding the phase's metrics.wandb."""
    from datakit_titan.prefs.config_registry import ENV_REFERENCE, reference_for
    from datakit_titan.dataset import PairDataset
    from datakit_titan.nodes import Nodes
    from datakit_titan.validate import check_phase

    nodes = nodes or Nodes()
    phase = load_prefs_phase(path)
    manifest = check_phase(phase, device=device, n_gpus=nodes.world(nproc))
    ref = reference_for(phase)
    PairDataset(phase.phase.mixture, seq_len=phase.stage[0].seq_len, batch_rows=phase.batch.per_gpu, loss=phase.phase.loss,
                reference=ref, manifest=manifest, phase_file=str(phase.path))  # every data error before the model is built
    from datakit_titan.export.checkpoint import record_phase

    if nodes.node_rank == 0:  # one writer on the shared output folder
        record_phase(phase.path)  # <output>/phase.toml: what `titan export <output>` reads
    out = stdout or sys.stdout
    print(f"phase {phase.phase.name}: loss {phase.phase.loss}, mixture {phase.phase.mixture}, model {phase.phase.model}, "
          f"RoPE {phase.rope.settings(phase.preset())}, seq_len {phase.stage[0].seq_len}, "
          f"{phase.batch.per_gpu} rows x {phase.batch.grad_accum} accum x {nodes.world(nproc)} -> {phase.phase.output}", file=out)
    from datakit_titan.cli import launch, launch_env

    env = launch_env(wandb, **({ENV_REFERENCE: json.dumps(ref)} if ref else {}))
    args = [str(phase.path), "--device", device] + (["--steps", str(max_steps)] if max_steps is not None else []) + (["--", *extra] if extra else [])
    launch("datakit_titan.prefs.train", args, nproc=nproc, env=env, stdout=stdout, what=f"the run of {phase.path}", file=phase.path,
           nodes=nodes)
    return phase


@app.command()
def refscore(
    phase: Path = typer.Argument(..., help="phase-3 phase file, e.g. engines/titan/phases/longctx_sft_dpo.toml"),
    device: str = typer.Option("cuda", help="cuda, or cpu (smoke)"),
    batch_pairs: int = typer.Option(4, help="pairs per forward pass (2 rows each)"),
):
    """Run the phase's reference model (its init_from checkpoint, with the phase's RoPE) once over every
    DPO pair of its mixture and store the chosen/rejected sequence log-probs under <mixture>/refscore/,
    with the checkpoint, tokenizer and data hashes that training checks.

    Example: titan refscore engines/titan/phases/longctx_sft_dpo.toml
    """
    written = refscore_phase(phase, device=device, batch_pairs=batch_pairs)
    for source, meta in written.items():
        print(f"{source}: {meta['n_pairs']:,} pairs scored with {meta['checkpoint']} (sha256 {meta['checkpoint_sha256'][:12]}..)")


@app.command()
def run(
    phase: Path = typer.Argument(..., help="phase-3 phase file"),
    device: str = typer.Option("cuda", help="cuda, or cpu for the smoke mode"),
    nproc: int = typer.Option(1, help="GPUs on this node (> 1: torchrun, FSDP2 data parallel)"),
    steps: int = typer.Option(None, help="stop after this global step"),
    wandb: str = typer.Option(None, help="offline | online | off (default: the phase's metrics.wandb)"),
):
    """Train an SFT / DPO / ORPO phase (checks data, reference log-probs and init_from first).

    Example: titan run engines/titan/phases/smoke_sft_dpo.toml --device cpu
    """
    p = run_prefs_phase(phase, device=device, nproc=nproc, max_steps=steps, wandb=wandb)
    print(f"done: checkpoints under {p.phase.output}; TensorBoard: tensorboard --logdir {p.phase.output}")


def main() -> None:
    try:
        app()
    except UserError as e:
        print(e.render(), file=sys.stderr)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
