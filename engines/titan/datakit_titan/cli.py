"""`titan`: run and size training phases on datakit mixtures.

    titan estimate engines/titan/phases/pretrain.toml --gpu rtx5080 --price-per-hour 0
    titan run engines/titan/phases/smoke.toml --device cpu
    titan run engines/titan/phases/pretrain.toml --nproc 8
    titan run engines/titan/phases/pretrain.toml --nproc 8 --nnodes 2 --node-rank 0 --master-addr 10.0.0.1   # and rank 1 on node 1
    titan refscore engines/titan/phases/longctx_sft_dpo.toml     # phase 3, once; then titan run it
    titan export outputs/smoke --to gguf --out exports/smoke-gguf     # then: titan generate, titan quant-report
    titan eval outputs/smoke --suite core,planning                    # then: titan eval-report outputs/
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from datakit.errors import UserError
from datakit_titan.kinds import load_any_phase
from datakit_titan.launch import run_phase
from datakit_titan.nodes import resolve_nodes

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


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
    price_per_hour: float = typer.Option(None, help="dollars per GPU-hour for <run>/cost.json (default: $0 on CPU and unpriced GPUs)"),
):
    """Train a phase (pretrain, mid-train, or phase 3's SFT / DPO / ORPO): checks the mixture (sha256),
    vocab, init_from, memory and reference log-probs first, prints the global batch in tokens, then runs
    each seq-len stage with TorchTitan. Rerunning resumes from the newest checkpoint in the phase's
    output folder. Several machines: the same command on each with --nnodes, its own --node-rank and
    node 0's --master-addr (torchrun joins them; the phase's output folder must be on storage every node
    sees, docs/scale-out.md).

    Example: titan run engines/titan/phases/smoke.toml --device cpu

    Example: titan run engines/titan/phases/smoke_sft_dpo.toml --device cpu

    Example: titan run engines/titan/phases/pretrain.toml --nproc 8 --nnodes 2 --node-rank 1 --master-addr 10.0.0.1
    """
    if device not in ("cuda", "cpu"):
        raise UserError(f"unknown device {device!r}", field="--device", fix="use cuda or cpu")
    if nproc < 1:
        raise UserError(f"--nproc {nproc}: needs at least one process", field="--nproc", fix="use 1 or the number of GPUs on this node")
    if steps is not None and steps < 1:
        raise UserError(f"--steps {steps}: needs at least one step", field="--steps", fix="leave it out to train the phase's token budget")
    nodes = resolve_nodes(nnodes, node_rank, master_addr, master_port)
    if price_per_hour is not None:  # read by the training processes' cost record (datakit_titan.cost)
        if price_per_hour < 0:
            raise UserError(f"--price-per-hour {price_per_hour}: a price cannot be negative", field="--price-per-hour", fix="e.g. 0.89")
        os.environ["DATAKIT_TITAN_USD_PER_GPU_HOUR"] = repr(float(price_per_hour))
        os.environ["DATAKIT_TITAN_PRICE_SOURCE"] = "--price-per-hour"
    p = run_phase(phase, device=device, nproc=nproc, max_steps=steps, wandb=wandb, nodes=nodes)
    print(f"done: checkpoints under {p.phase.output}; TensorBoard: tensorboard --logdir {p.phase.output}")
    if p.eval is not None:  # [eval] in the phase file: evaluate the final checkpoint now
        from datakit_titan.eval.run import parse_suites

        parse_suites(p.eval.suite)
        args = ["eval", str(p.phase.output), "--suite", p.eval.suite, "--phase", str(phase), "--device", device,
                *(["--limit", str(p.eval.limit)] if p.eval.limit else []), *p.eval.args]
        if subprocess.run([sys.executable, "-m", "datakit_titan.cli", *args]).returncode != 0:
            raise UserError("the phase trained, but its [eval] failed (printed above)", file=phase, field="eval",
                            fix=f"fix it and rerun `titan {' '.join(args)}`")


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
    from datakit_titan.estimate import report
    from datakit_titan.plan_claim import plan_claim_report

    p = load_any_phase(phase)
    gpu = gpu or p.parallel.gpu or "rtx5080"
    claim = p.plan_claim
    if price_per_hour is None:
        same = claim is not None and claim.usd_per_gpu_hour is not None and claim.gpu == gpu.lower()
        price_per_hour = claim.usd_per_gpu_hour if same else 0.0
    print(report(p, gpu=gpu, n_gpus=gpus, mfu=mfu, price_per_hour=price_per_hour, vocab_size=vocab))
    print()
    print(plan_claim_report(p, mfu=mfu))


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
    from datakit_titan.prefs.reference import refscore_phase

    written = refscore_phase(phase, device=device, batch_pairs=batch_pairs)
    for source, meta in written.items():
        print(f"{source}: {meta['n_pairs']:,} pairs scored with {meta['checkpoint']} (sha256 {meta['checkpoint_sha256'][:12]}..)")


from datakit_titan.export.cli import export, generate, quant_report  # noqa: E402  titan export / generate / quant-report

app.command()(export)
app.command()(generate)
app.command("quant-report")(quant_report)

from datakit_titan.eval.cli import eval_cmd, eval_report  # noqa: E402  titan eval / eval-report

app.command("eval")(eval_cmd)
app.command("eval-report")(eval_report)

from datakit_titan.cloud import cli as cloud_cli  # noqa: E402  titan launch / status / logs / down (SkyPilot)

for _name in ("launch", "status", "logs", "down"):
    app.command(_name)(getattr(cloud_cli, _name))


def main() -> None:
    try:
        app()
    except UserError as e:
        print(e.render(), file=sys.stderr)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
