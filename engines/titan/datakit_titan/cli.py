"""`titan`: run and size training phases on datakit mixtures.

    titan estimate engines/titan/phases/pretrain.toml --gpu rtx5080 --price-per-hour 0
    titan run engines/titan/phases/smoke.toml --device cpu
    titan run engines/titan/phases/pretrain.toml --nproc 8
    titan run engines/titan/phases/pretrain.toml --nproc 8 --nnodes 2 --node-rank 0 --master-addr 10.0.0.1   # and rank 1 on node 1
    titan export outputs/smoke --to gguf --out exports/smoke-gguf     # then: titan generate, titan quant-report
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from datakit.errors import UserError
from datakit_titan.nodes import Nodes, resolve_nodes
from datakit_titan.phase import Phase, load_phase

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def run_phase(
    path: str | Path,
    *,
    device: str = "cuda",
    nproc: int = 1,
    max_steps: int | None = None,
    extra: list[str] | None = None,
    wandb: str | None = None,
    stdout=None,
    nodes: Nodes = Nodes(),
) -> Phase:
    """Validate a phase, then run its stages one after another (one TorchTitan run each).

    device: "cuda" or "cpu" (smoke mode). nproc: processes (GPUs) on this node, through torchrun
    when > 1. max_steps: stop after this global step (the LR schedule still spans the phase).
    extra: TorchTitan overrides passed through (e.g. ["--training.max_norm", "0.5"]).
    wandb: "offline" | "online" | "off" instead of the phase's [metrics] wandb.
    nodes: the machines of a multi-node job (this one's rank among them); the global batch and the steps
    count all nnodes x nproc ranks.
    """
    phase = load_phase(path)
    world = nodes.world(nproc)
    from datakit_titan.validate import check_phase

    gpu_mem = None
    if device == "cuda":
        try:
            import torch

            if torch.cuda.is_available():
                gpu_mem = torch.cuda.get_device_properties(0).total_memory / 1024**3
        except ImportError:
            pass
    manifest = check_phase(phase, device=device, n_gpus=world, gpu_memory_gib=gpu_mem)
    from datakit_titan.export.checkpoint import record_phase

    if nodes.node_rank == 0:  # one writer on the shared output folder (two nodes renaming one temp file race)
        record_phase(phase.path)  # <output>/phase.toml: what `titan export <output>` reads (only once the phase checks out)
    steps = phase.stage_steps(world)
    where = f"{nproc} x {device}" if nodes.nnodes == 1 else (
        f"{nodes.nnodes} nodes x {nproc} x {device} (this is node {nodes.node_rank}, rendezvous {nodes.master_addr}:{nodes.master_port})")
    print(
        f"phase {phase.phase.name}: mixture {phase.phase.mixture} ({manifest.total_tokens:,} tokens, "
        f"{len(manifest.sources)} sources), model {phase.phase.model}, {where}",
        file=stdout or sys.stdout,
    )
    from datakit_titan.budget import check_budget

    print(f"  {check_budget(phase, manifest)}", file=stdout or sys.stdout)
    for i, st in enumerate(phase.stage):
        print(
            f"  stage {i + 1}: seq_len {st.seq_len}, global batch {phase.tokens_per_step(i, world):,} tokens "
            f"({phase.batch.per_gpu} x {phase.batch.grad_accum} accum x {world}), {steps[i]:,} steps -> {phase.stage_dir(i)}",
            file=stdout or sys.stdout,
        )
    env = launch_env(wandb)
    for i in range(len(phase.stage)):
        if i > 0 and max_steps is not None and phase.stage_end_step(i - 1, world) >= max_steps:
            break
        if phase.stage_done(i, world, max_steps):
            print(f"  stage {i + 1}: already at step {phase.stage_end_step(i, world, max_steps)}, skipped", file=stdout or sys.stdout)
            continue
        args = [str(phase.path), "--stage", str(i), "--device", device]
        if max_steps is not None:
            args += ["--steps", str(max_steps)]
        if extra:
            args += ["--", *extra]
        launch("datakit_titan.train", args, nproc=nproc, env=env, stdout=stdout, what=f"stage {i + 1} of {phase.path}", file=phase.path,
               nodes=nodes)
    return phase


def launch_env(wandb: str | None, **extra: str) -> dict:
    """Environment of a training process: shards already verified here, the --wandb override, and extras."""
    env = dict(os.environ, DATAKIT_TITAN_VERIFIED="1", **extra)
    if wandb:
        if wandb not in ("offline", "online", "off"):
            raise UserError(f"unknown wandb mode {wandb!r}", field="--wandb", fix="use offline, online or off")
        env["DATAKIT_TITAN_WANDB"] = wandb  # read by datakit_titan.config_registry.wandb_mode
    return env


def launch(module: str, args: list[str], *, nproc: int, env: dict, stdout, what: str, file, nodes: Nodes = Nodes()) -> None:
    """Run a training module in its own process (torchrun when nproc > 1 or across nodes); exit code 2 = a user error."""
    prefix = nodes.launcher(nproc)
    rc = subprocess.run([*prefix, "-m", module, *args], env=env, stdout=stdout, stderr=subprocess.STDOUT if stdout else None).returncode
    if rc == 2:
        raise UserError(f"{what} stopped on a user error (printed above)", file=file)
    if rc != 0:
        raise RuntimeError(f"{what} failed with exit code {rc}")


@app.command()
def run(
    phase: Path = typer.Argument(..., help="phase file, e.g. engines/titan/phases/pretrain.toml"),
    device: str = typer.Option("cuda", help="cuda, or cpu for the smoke mode (demo, CI)"),
    nproc: int = typer.Option(1, help="GPUs on this node; > 1 launches through torchrun (FSDP2 data parallel)"),
    steps: int = typer.Option(None, help="stop after this global step (default: the phase's token budget)"),
    wandb: str = typer.Option(None, help="offline | online | off (default: the phase's metrics.wandb, offline)"),
    nnodes: int = typer.Option(None, "--nnodes", help="machines in the job (default: SKYPILOT_NUM_NODES, else 1); run the same command on each"),
    node_rank: int = typer.Option(None, "--node-rank", help="this machine's rank, 0..nnodes-1 (default: SKYPILOT_NODE_RANK, else 0)"),
    master_addr: str = typer.Option(None, "--master-addr", help="node 0's address, the same on every node (default: first of SKYPILOT_NODE_IPS)"),
    master_port: int = typer.Option(None, "--master-port", help="rendezvous port on node 0 (default 29500)"),
):
    """Train a phase: checks the mixture (sha256), vocab, init_from and memory first, prints the
    global batch in tokens, then runs each seq-len stage with TorchTitan. Rerunning resumes from
    the newest checkpoint in the phase's output folder. Several machines: the same command on each
    with --nnodes, its own --node-rank and node 0's --master-addr (torchrun joins them; the phase's
    output folder must be on storage every node sees, docs/scale-out.md).

    Example: titan run engines/titan/phases/smoke.toml --device cpu

    Example: titan run engines/titan/phases/pretrain.toml --nproc 8 --nnodes 2 --node-rank 1 --master-addr 10.0.0.1
    """
    if device not in ("cuda", "cpu"):
        raise UserError(f"unknown device {device!r}", field="--device", fix="use cuda or cpu")
    if nproc < 1:
        raise UserError(f"--nproc {nproc}: needs at least one process", field="--nproc", fix="use 1 or the number of GPUs on this node")
    if steps is not None and steps < 1:
        raise UserError(f"--steps {steps}: needs at least one step", field="--steps", fix="leave it out to train the phase's token budget")
    nodes = resolve_nodes(nnodes, node_rank, master_addr, master_port)
    from datakit_titan.prefs.phase import is_prefs_phase

    if is_prefs_phase(phase):  # phase 3: loss = sft_dpo | sft | dpo | orpo (docs/phase3.md)
        from datakit_titan.prefs.cli import run_prefs_phase

        p = run_prefs_phase(phase, device=device, nproc=nproc, max_steps=steps, wandb=wandb, nodes=nodes)
    else:
        p = run_phase(phase, device=device, nproc=nproc, max_steps=steps, wandb=wandb, nodes=nodes)
    print(f"done: checkpoints under {p.phase.output}; TensorBoard: tensorboard --logdir {p.phase.output}")


@app.command()
def estimate(
    phase: Path = typer.Argument(..., help="phase file"),
    gpu: str = typer.Option(None, help="rtx5080, rtx5090, a100, h100 or h200 (default: the phase's [parallel] gpu, the plan's hardware)"),
    gpus: int = typer.Option(1, help="number of GPUs (data parallel)"),
    mfu: float = typer.Option(0.4, help="model FLOPs utilization to assume (0-1)"),
    price_per_hour: float = typer.Option(None, help="dollars per GPU-hour (default: the plan's rate in the phase's [plan_claim] when it names this GPU, else 0)"),
    vocab: int = typer.Option(None, help="vocabulary when the preset takes the mixture's (default 65,536)"),
):
    """Parameters, FLOPs/token (6N + attention), wall-clock at a stated MFU, memory per GPU for
    AdamW vs Adafactor with and without activation checkpointing, and dollars; then the plan's own
    time/cost figure for this phase ([plan_claim] in the phase file) checked line by line.

    Example: titan estimate engines/titan/phases/longctx_sft_dpo.toml   (the plan's A100 80GB)

    Example: titan estimate engines/titan/phases/longctx_sft_dpo.toml --gpu rtx5090 --gpus 2
    """
    from datakit_titan.estimate import plan_claim_report, report
    from datakit_titan.prefs.phase import is_prefs_phase, load_prefs_phase

    p = load_prefs_phase(phase) if is_prefs_phase(phase) else load_phase(phase)
    gpu = gpu or p.parallel.gpu or "rtx5080"
    claim = p.plan_claim
    if price_per_hour is None:
        same = claim is not None and claim.usd_per_gpu_hour is not None and claim.gpu == gpu.lower()
        price_per_hour = claim.usd_per_gpu_hour if same else 0.0
    print(report(p, gpu=gpu, n_gpus=gpus, mfu=mfu, price_per_hour=price_per_hour, vocab_size=vocab))
    print()
    print(plan_claim_report(p, mfu=mfu))


from datakit_titan.prefs.cli import refscore  # noqa: E402  phase 3: `titan refscore <phase.toml>`

app.command()(refscore)

from datakit_titan.export.cli import export, generate, quant_report  # noqa: E402  titan export / generate / quant-report

app.command()(export)
app.command()(generate)
app.command("quant-report")(quant_report)


def main() -> None:
    try:
        app()
    except UserError as e:
        print(e.render(), file=sys.stderr)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
