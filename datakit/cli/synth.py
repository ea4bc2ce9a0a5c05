"""`datakit synth ...`: synthetic planning data under a hard dollar budget (thin over datakit.synth).

Other modules add commands to `app` (datakit/cli/synth_records.py: dpo, sft, verify). Keep this import
light: litellm is imported inside the commands only.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import typer

from datakit.synth.money import usd

app = typer.Typer(
    help="Generate synthetic planning, DPO and SFT data under a hard dollar budget.",
    no_args_is_help=True,
    add_completion=False,
)

EXAMPLES = """
Examples:\n
  datakit synth planning --provider azure --budget 100 --dry-run\n
  datakit synth planning --provider azure --budget 100 --count 5000\n
  datakit synth planning --provider gemini --budget 20 --out data/synth/gemini\n
  datakit synth planning --provider procedural --count 1000 --seed 1
"""


@app.command(help="Generate planning examples (<problem>, <thinking>, <answer>) from an LLM under a hard dollar budget. "
    "Every call reserves its worst case in <out>/ledger.sqlite first, so settled + in-flight spend never exceeds "
    "--budget, across reruns of the same folder. Ctrl-C or kill, then rerun the same command: it resumes with no "
    "duplicates. Keys come from the environment variable named in the provider profile (synth/planning.toml). "
    "--provider procedural makes verifiable tasks by code instead (no budget)." + EXAMPLES)
def planning(
    provider: str = typer.Option("azure", help="provider profile in the spec: azure (default: Azure OpenAI on the plan's Azure credit), azure-kimi, gemini, vertex, kimi, openai, anthropic, openai-compatible, or procedural"),
    budget: float = typer.Option(None, help="most this --out folder may ever spend, in US dollars (required for LLM providers)"),
    count: int = typer.Option(1000, help="accepted records wanted in the folder (earlier runs count)"),
    out: Path = typer.Option(Path("data/synth/planning"), help="output folder: records/, rejects/, ledger.sqlite"),
    seed: int = typer.Option(0, help="seed of the diversity combinations; example i of seed s is always the same"),
    model: str = typer.Option(None, help="litellm model string overriding the profile's, e.g. gemini/gemini-3.1-pro-preview"),
    spec: Path = typer.Option(Path("synth/planning.toml"), help="domains, seed tasks, prompt and provider profiles"),
    concurrency: int = typer.Option(None, help="requests in flight (default: planning.concurrency in the spec)"),
    workers: int = typer.Option(1, help="processes making the calls, sharing budget and quota (litellm costs ~10 ms CPU "
                                "per request: use about one per free core above ~50 requests/s)"),
    max_tokens: int = typer.Option(None, help="output cap per call, reserved as worst case (default: planning.max_tokens)"),
    timeout: float = typer.Option(None, help="seconds per request before it is abandoned (and charged at worst case)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print what the budget buys per provider; make no request"),
    batch: bool = typer.Option(False, "--batch", help="use the provider's Batch API at half price (azure, openai); whole jobs' worst case reserved first; slow (hours)"),
    domain: list[str] = typer.Option(None, help="procedural only: domains to draw from (repeatable)"),
    difficulty: str = typer.Option("medium", help="procedural only: easy, medium or hard"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    from datakit.synth import planning as lib

    if provider == "procedural":
        summary = lib.run_procedural(out, count=count, seed=seed, domains=domain or None, difficulty=difficulty)
        typer.echo("procedural: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
        return
    if dry_run:
        from datakit.synth.dryrun import dry_run as run_dry, format_dry_run

        if budget is None:
            budget = 100.0
        typer.echo(format_dry_run(run_dry(provider, budget, spec_path=spec, model=model, max_tokens=max_tokens, seed=seed)))
        return
    # litellm leaves a coroutine un-awaited when Ctrl-C cancels a request; that is expected, not news
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    try:
        s = lib.run_planning(
            out, provider=provider, budget_usd=budget, count=count, seed=seed, spec_path=spec, model=model,
            concurrency=concurrency, max_tokens=max_tokens, timeout_s=timeout, batch=batch, progress=not quiet,
            workers=workers,
        )
    except KeyboardInterrupt:
        typer.echo("interrupted: calls in flight were charged at their worst case; rerun the same command to resume "
                   f"(see: datakit synth status {out})", err=True)
        sys.exit(130)  # typer would turn this into a return value that the root app does not pass on
    rejected = ", ".join(f"{k}: {v}" for k, v in sorted(s["rejected"].items())) or "none"
    failed = ", ".join(f"{k}: {v}" for k, v in sorted(s["failed"].items())) or "none"
    typer.echo(
        f"{s['stopped']}: {s['accepted']} records this run, {s['accepted_total']} in {s['out']}\n"
        f"  spent {usd(s['spent_usd'])} this run, {usd(s['spent_total_usd'])} of {usd(s['budget_usd'])} in total "
        f"({s['model']} at ${s['price_in_usd_per_mtok']:g}/${s['price_out_usd_per_mtok']:g} per 1M in/out tokens)\n"
        f"  rejected: {rejected}; failed calls (retried on rerun): {failed}\n"
        f"  see: datakit synth status {s['out']}"
    )


@app.command(help="Show a synth output folder: spend vs budget, records, rejects by reason, tokens (our tokenizer "
    "when tokenizers/datakit-65k/tokenizer.json or --tokenizer exists) and dollars per 1M tokens.\n\n"
    "Example: datakit synth status data/synth/planning")
def status(
    out: Path = typer.Argument(Path("data/synth/planning"), help="output folder of a synth run"),
    tokenizer: Path = typer.Option(None, help="tokenizer.json to count tokens with"),
) -> None:
    from datakit.synth.status import format_status, synth_status

    typer.echo(format_status(synth_status(out, tokenizer)))
