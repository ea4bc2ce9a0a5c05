"""`datakit verify <mixture>`: check a built mixture's files against its manifest (datakit.contract.verify)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def verify(
        mixture: Path = typer.Argument(..., help="A built mixture folder, e.g. data/mixtures/midtrain."),
        quick: bool = typer.Option(False, "--quick", help="Sizes only: every listed file exists with its size (no hashing)."),
        workers: int = typer.Option(0, "--workers", help="Threads hashing shards (default: CPUs, at most 8)."),
    ):
        """Check every file the manifest lists (shards, .ds.index, .ds.loss) by size and sha256, the
        shards' structure (document ends, loss masks, token ids) and accounting.duckdb's totals against
        the manifest. Exit 0 when all match; exit 1 with the list of bad files and the fix otherwise.

            datakit verify data/mixtures/midtrain
            datakit verify data/mixtures/midtrain --quick
        """
        from datakit.contract import verify_mixture

        report = verify_mixture(mixture, quick=quick, progress=True, workers=workers or None)
        if not report.ok:
            for n in report.notes:
                typer.echo(f"note: {n}")
            raise report.error()
        typer.echo(report.summary())
