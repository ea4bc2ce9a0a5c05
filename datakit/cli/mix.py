"""`datakit mix plan|build`"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from datakit.spec import load_spec
from datakit.spec.sizes import human

app = typer.Typer(no_args_is_help=True)

EXECUTOR_HELP = ("Where datatrove runs the stages: local (default), ray (the cluster at RAY_ADDRESS, or one started here "
                 "with `ray start --head`) or slurm (submits job arrays and waits for them). See docs/scale-out.md.")


def _opts(workers: int | None, executor: str, slurm_partition: str | None, slurm_time: str, slurm_option: list[str] | None = None,
          cpus_per_task: int = 1, mem_per_cpu_gb: float = 2.0, verbose: bool = False):
    from datakit.errors import UserError
    from datakit.mix.pipeline import ExecutorOptions

    options = {}
    for item in slurm_option or []:
        key, eq, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not key:
            raise UserError(f"--slurm-option {item!r} is not KEY=VALUE", field="--slurm-option",
                            fix="write an sbatch option without its dashes, e.g. --slurm-option account=myproj")
        options[key] = value if eq else ""
    if executor == "local" and workers is None:
        workers = 1
    return ExecutorOptions(kind=executor, workers=workers, slurm_partition=slurm_partition, slurm_time=slurm_time,
                           slurm_options=options, cpus_per_task=cpus_per_task, mem_per_cpu_gb=mem_per_cpu_gb, verbose=verbose)


@app.command()
def plan(
    spec_path: Path = typer.Argument(..., help="Mixture spec, e.g. mixtures/midtrain.toml."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    workers: int = typer.Option(1, "--workers", help="Parallel datatrove workers when counting local sources."),
    no_count: bool = typer.Option(False, "--no-count", help="Do not read local sources; plan from the catalog and overrides only."),
    verbose: bool = typer.Option(False, "--verbose", help="Show datatrove's logs."),
):
    """Say what each source can supply after filters, its target, the implied epochs and its share.

    Hub sources are planned from their dataset cards before any download; local sources are read and
    counted (exact tokens once the tokenizer exists). A target needing more than max_epochs (default 4)
    is refused with the numbers and the fix; the command then exits with code 2.

        datakit mix plan mixtures/midtrain.toml
    """
    from datakit.mix.build import plan_mixture
    from datakit.mix.plan import format_plan, refuse_if_needed

    spec = load_spec(spec_path)
    p = plan_mixture(spec, _opts(workers, "local", None, ""), count_local=not no_count, verbose=verbose)
    typer.echo(json.dumps(p.to_dict(), indent=2) if as_json else format_plan(p))
    refuse_if_needed(p, str(spec_path))


@app.command()
def build(
    spec_path: Path = typer.Argument(..., help="Mixture spec, e.g. mixtures/midtrain.toml."),
    workers: int = typer.Option(None, "--workers", help="datatrove tasks running at once (local: processes, default 1; "
                                "ray/slurm: default no limit). The output bytes do not depend on it."),
    executor: str = typer.Option("local", "--executor", help=EXECUTOR_HELP),
    slurm_partition: str = typer.Option(None, "--slurm-partition", help="Slurm partition (with --executor slurm; `sinfo -s` lists them)."),
    slurm_time: str = typer.Option("24:00:00", "--slurm-time", help="Slurm time limit per task."),
    slurm_option: list[str] = typer.Option(None, "--slurm-option", help="Extra sbatch option KEY=VALUE, repeatable "
                                           "(e.g. --slurm-option account=myproj --slurm-option qos=high)."),
    cpus_per_task: int = typer.Option(1, "--cpus-per-task", help="CPUs each ray/slurm task reserves."),
    mem_per_cpu_gb: float = typer.Option(2.0, "--mem-per-cpu-gb", help="Memory per reserved CPU for ray/slurm tasks, in GB."),
    verbose: bool = typer.Option(False, "--verbose", help="Show datatrove's logs."),
):
    """Stream, filter, curate, tokenize, sample and shard the spec's sources into a mixture (Contract 2).

    Writes <output>/tokens/<source>/*.ds, accounting.duckdb, report.md/png and, last, manifest.json.
    Interrupted? Rerun the same command: finished work is skipped and the bytes come out identical.

        datakit mix build mixtures/midtrain.toml --workers 2

        RAY_ADDRESS=10.0.0.1:6379 datakit mix build mixtures/midtrain.toml --executor ray

        datakit mix build mixtures/midtrain.toml --executor slurm --slurm-partition cpu   # waits for its jobs
    """
    from datakit.mix.build import build_mixture

    spec = load_spec(spec_path)
    opts = _opts(workers, executor, slurm_partition, slurm_time, slurm_option, cpus_per_task, mem_per_cpu_gb, verbose)
    m = build_mixture(spec, opts, verbose=verbose)
    typer.echo(f"built {spec.output}: {human(m.total_tokens)} tokens, {m.total_docs:,} documents, {len(m.sources)} sources")
    for s in m.sources:
        missing = s.read_stats.get("missing_blob")
        typer.echo(f"  {s.name:<18} {human(s.tokens_written):>8} tokens  {s.epochs:6.2f} epochs  {s.weight:6.1%}"
                   + (f"  ({missing:,} blobs missing)" if missing else ""))
    for n in m.notes:
        typer.echo(f"  note: {n}")
    typer.echo(f"report: {spec.output / 'report.md'}")


@app.command()
def export(
    mixture: Path = typer.Argument(..., help="Built mixture folder, e.g. data/mixtures/pretrain."),
    to: str = typer.Option(..., "--to", help="megatron (.bin/.idx + blend.txt) | hf-parquet | mds (MosaicML streaming)."),
    out: Path = typer.Option(..., "--out", help="Output folder: one .bin/.idx, parquet file or MDS folder per source."),
    drop_loss_masks: bool = typer.Option(False, "--drop-loss-masks", help="megatron: export sources with loss masks without them."),
):
    """Write a built mixture in the format another trainer reads, one output per source (files verified first).

        datakit mix export data/mixtures/pretrain --to megatron --out exports/pretrain-megatron
        datakit mix export data/mixtures/smoke_sft_dpo --to hf-parquet --out exports/smoke-parquet
    """
    from datakit.export import export_mixture

    written = export_mixture(mixture, to, out, drop_loss_masks=drop_loss_masks)
    typer.echo(f"exported {mixture} as {to}: {len(written)} outputs in {out}")
    for p in written:
        typer.echo(f"  {p}")
