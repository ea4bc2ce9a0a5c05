"""`datakit tokens report|query`"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def report(
    mixture: Path = typer.Argument(..., help="A built mixture folder, e.g. data/mixtures/midtrain."),
    quick: bool = typer.Option(False, "--quick", help="Verify file sizes only instead of sha256 + structure first."),
):
    """Verify the mixture (as `datakit verify`: exit 1 listing bad files), then print the per-source table
    (docs, tokens, lengths, epochs, share, target vs written) and curation, and (re)write
    <mixture>/report.md with its chart report.png.

        datakit tokens report data/mixtures/midtrain
    """
    from datakit.accounting.report import render_report, write_report
    from datakit.contract import verify_mixture

    checked = verify_mixture(mixture, quick=quick, progress=True).raise_if_bad()
    write_report(mixture)
    typer.echo(checked.summary())
    typer.echo(render_report(mixture))
    typer.echo(f"wrote {mixture / 'report.md'} and {mixture / 'report.png'}")


@app.command()
def query(
    mixture: Path = typer.Argument(..., help="A built mixture folder."),
    sql: str = typer.Argument(..., help="SQL over tables docs, shards, sources (and removed, curation_steps)."),
):
    """Run SQL on the mixture's accounting.duckdb and print the result.

        datakit tokens query data/mixtures/midtrain "select source, sum(tokens) from docs group by 1"
    """
    from datakit.accounting.db import query as run

    names, rows = run(mixture, sql)
    widths = [max(len(str(n)), *(len(_fmt(r[i])) for r in rows)) if rows else len(str(n)) for i, n in enumerate(names)]
    typer.echo("  ".join(str(n).ljust(w) for n, w in zip(names, widths)))
    for r in rows:
        typer.echo("  ".join(_fmt(v).ljust(w) for v, w in zip(r, widths)))


def _fmt(v) -> str:
    return f"{v:,}" if isinstance(v, int) else (f"{v:.4g}" if isinstance(v, float) else str(v))
