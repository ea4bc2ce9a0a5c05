"""`titan launch / status / logs / down`: cloud runs through SkyPilot (docs/cloud.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from datakit.errors import UserError
from datakit_titan.cloud import sky


def launch(
    phase: Path = typer.Argument(..., help="phase file, e.g. engines/titan/phases/longctx_sft_dpo.toml"),
    cloud: str = typer.Option(..., help="SkyPilot infra: azure, azure/eastus, runpod, aws, gcp, ..., or your own: ssh/<pool>, kubernetes"),
    gpu: str = typer.Option(..., help="GPU[:COUNT] per node: A100-80GB, RTX5090:2, H100:8, RTX5080 (or a100, rtx5090, ...)"),
    nodes: int = typer.Option(1, help="nodes; > 1 runs torchrun across them ($SKYPILOT_NODE_RANK, $SKYPILOT_NODE_IPS)"),
    spot: bool = typer.Option(False, "--spot", help="spot/preemptible VMs; a preempted job is relaunched by `sky jobs` and resumes from its last checkpoint"),
    price_per_hour: float = typer.Option(None, help="dollars per GPU-hour (default: SkyPilot's catalog, else the dated table; $0 on your own ssh/kubernetes)"),
    mfu: float = typer.Option(0.4, help="model FLOPs utilization assumed for the time and dollar estimate"),
    disk_size: int = typer.Option(256, help="boot disk per node, GB (the checkpoint cache of the outputs mount lives there)"),
    bucket: str = typer.Option("datakit", help="prefix of the bucket names: <prefix>-mix-<mixture>, <prefix>-outputs, <prefix>-init-<phase>"),
    wandb: str = typer.Option(None, help="online | offline | off (default: online when WANDB_API_KEY is set, else offline)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the task YAML, hours, dollars and uploads; launch nothing"),
):
    """Run a phase on cloud GPUs with SkyPilot (managed job: spot recovery, bucket mounts, any cloud).

    Checks first, before anything is rented: the GPU and cloud names, that the batch fits the GPU's memory
    (`titan estimate`), the price, and SkyPilot's credentials for the cloud. Prints hours and dollars at the
    stated MFU, what is uploaded, and the task file it wrote under outputs/launch/.

    Example: titan launch engines/titan/phases/longctx_sft_dpo.toml --cloud azure --gpu A100-80GB --dry-run

    Example: titan launch engines/titan/phases/longctx_sft_dpo.toml --cloud runpod --gpu RTX5090:2 --spot
    """
    from datakit_titan.cloud.launch import launch as do_launch

    if wandb is not None and wandb not in ("online", "offline", "off"):
        raise UserError(f"unknown wandb mode {wandb!r}", field="--wandb", fix="use online, offline or off")
    do_launch(phase, dry_run=dry_run, cloud=cloud, gpu=gpu, nodes=nodes, spot=spot, price_per_hour=price_per_hour, mfu=mfu,
              disk_size_gb=disk_size, bucket=bucket, wandb=wandb)


def status():
    """Managed jobs and clusters: `sky jobs queue` and `sky status`."""
    rc_jobs = sky.sky_cli(["jobs", "queue"])
    rc_clusters = sky.sky_cli(["status"])
    raise typer.Exit(rc_jobs or rc_clusters)


def logs(
    job: str = typer.Argument(None, help="job name or id (default: the latest managed job)"),
    cluster: str = typer.Option(None, help="a cluster's logs instead (`sky logs CLUSTER`)"),
    follow: bool = typer.Option(True, "--follow/--no-follow", help="stream new lines until the job ends"),
):
    """Stream a job's output: `sky jobs logs` (or `sky logs` for a cluster)."""
    args = ["logs", cluster] if cluster else ["jobs", "logs"]
    if not cluster and job:
        args += ["-n", job] if not job.isdigit() else [job]
    if not follow:
        args.append("--no-follow")
    raise typer.Exit(sky.sky_cli(args))


def down(
    job: str = typer.Argument(..., help="job name or id (as `titan status` lists it), or a cluster with --cluster"),
    cluster: bool = typer.Option(False, "--cluster", help="tear down a cluster (`sky down`) instead of cancelling a managed job"),
):
    """Stop paying: cancel a managed job (`sky jobs cancel`) or tear down a cluster (`sky down`). Buckets stay
    (checkpoints, cost.json); delete them with `sky storage delete` when done."""
    if cluster:
        args = ["down", job, "-y"]
    else:
        args = ["jobs", "cancel", "-y"] + (["-n", job] if not job.isdigit() else [job])
    raise typer.Exit(sky.sky_cli(args))
