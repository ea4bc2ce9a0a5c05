"""`datakit cost`: every dollar spent or committed: synth ledgers, GPU runs, the Azure bill, the plan's budget."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from datakit.errors import UserError


def register(app: typer.Typer) -> None:
    @app.command()
    def cost(
        paths: list[Path] = typer.Argument(None, help="folders to search for ledger.sqlite and cost.json (default: data outputs)"),
        azure_usage: Path = typer.Option(None, "--azure-usage", help="reconcile with an Azure export: az consumption usage list -o json > usage.json"),
        sky: bool = typer.Option(False, "--sky", help="add SkyPilot's own cluster cost report (sky cost-report; needs make cloud)"),
        credit: float = typer.Option(100.0, help="the budget to count against, US dollars (the plan: $100 of Azure credit)"),
        as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    ):
        """One table of every dollar: synth budget ledgers (spent, reserved, budget, per provider/model), GPU runs
        (<run>/cost.json per phase and stage), totals against the plan's $100 credit and its $55 phase-3 figure,
        and, with --azure-usage, the Azure bill by meter category and resource group next to what was recorded.

        Example: datakit cost --azure-usage usage.json
        """
        from datakit.cost.report import cost_report, format_report

        roots = paths or [p for p in (Path("data"), Path("outputs")) if p.exists()]
        for p in roots:
            if not p.exists():
                raise UserError("no such folder", file=str(p), fix="pass folders holding synth outputs or run folders (default: data outputs)")
        if credit < 0:
            raise UserError(f"--credit {credit}: negative", field="--credit", fix="e.g. --credit 100")
        r = cost_report(roots, credit_usd=credit, azure_usage=azure_usage, sky=sky)
        typer.echo(json.dumps(r, indent=2, default=str) if as_json else format_report(r))
