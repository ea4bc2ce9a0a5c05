"""`datakit synth dpo | sft | verify`: preference pairs, SFT export and re-checking (thin over datakit.synth).

Adds commands to the `synth` group defined in datakit/cli/synth.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from datakit.cli.synth import app


def _split(values: list[str] | None) -> list[str] | None:
    out = [v.strip() for item in values or [] for v in item.split(",") if v.strip()]
    return out or None


@app.command(help="Make DPO preference pairs whose flaw is proven. Chosen = a verified plan from --from; rejected = "
    "the same problem with one typed flaw (arithmetic_slip, dependency_order, over_allocated, missed_constraint, "
    "wrong_final_answer, skipped_step). With --provider procedural (default) the flaw is a programmatic edit and a pair "
    "is kept only if the checker accepts chosen and rejects rejected; dropped pairs are counted and kept in "
    "<out>/rejects/. With an LLM provider the flaw is requested under the --budget ledger of --out (prompt in "
    "synth/dpo.toml). Reruns resume without duplicates.\n\n"
    "Examples:\n\n"
    "  datakit synth dpo --from data/synth/procedural --out data/dpo/procedural\n\n"
    "  datakit synth dpo --from data/synth/planning --provider azure --budget 20 --out data/dpo/azure")
def dpo(
    from_: Path = typer.Option(..., "--from", help="planning set: the --out folder of 'datakit synth planning'"),
    out: Path = typer.Option(Path("data/dpo/procedural"), help="output folder: records/, rejects/ (and ledger.sqlite for LLMs)"),
    provider: str = typer.Option("procedural", help="procedural (free, proven flaws) or an LLM profile of synth/planning.toml"),
    budget: float = typer.Option(None, help="LLM only: most this --out folder may ever spend, in US dollars"),
    model: str = typer.Option(None, help="LLM only: litellm model string overriding the profile's"),
    flaw: list[str] = typer.Option(None, help="flaws to make (repeatable or comma-separated; default: all the domain supports)"),
    pairs_per_record: int = typer.Option(1, help="different flaws to keep per planning record"),
    seed: int = typer.Option(0, help="fixes which flaw each record gets and where it goes"),
    limit: int = typer.Option(None, help="use only the first N planning records"),
    spec: Path = typer.Option(Path("synth/dpo.toml"), help="LLM only: flaw prompt and settings"),
    planning_spec: Path = typer.Option(Path("synth/planning.toml"), help="LLM only: provider profiles and prices"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    if provider == "procedural":
        from datakit.synth.dpo import format_summary, make_dpo

        s = make_dpo(from_, out, flaws=_split(flaw), pairs_per_record=pairs_per_record, seed=seed, limit=limit,
                     progress=not quiet)
        typer.echo(format_summary(s))
        return
    from datakit.synth.dpo_llm import format_llm_summary, make_dpo_llm

    s = make_dpo_llm(from_, out, provider=provider, budget_usd=budget, model=model, flaws=_split(flaw), seed=seed,
                     limit=limit, spec_path=spec, planning_spec_path=planning_spec, progress=not quiet)
    typer.echo(format_llm_summary(s))


@app.command(help="Export planning records as SFT records {prompt: <problem>.., completion: <thinking>..<answer>..} "
    "for the phase-3 mixture (loss on the completion only). Records with a procedural instance are re-checked and "
    "dropped to <out>/rejects/ if they fail. Reruns skip ids already exported.\n\n"
    "Example: datakit synth sft --from data/synth/procedural --out data/sft/procedural")
def sft(
    from_: Path = typer.Option(..., "--from", help="planning set: the --out folder of 'datakit synth planning'"),
    out: Path = typer.Option(Path("data/sft/planning"), help="output folder: records/sft.jsonl, rejects/"),
    no_verify: bool = typer.Option(False, "--no-verify", help="do not re-run checkers on procedural records"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    from datakit.synth.sft import make_sft

    s = make_sft(from_, out, verify=not no_verify, progress=not quiet)
    per = ", ".join(f"{k} {v}" for k, v in sorted(s["per_domain"].items())) or "none"
    typer.echo(f"wrote {s['records_written']} SFT records to {s['out']}/records/sft.jsonl in {s['elapsed_s']} s "
               f"({per}); skipped {s['records_skipped_existing']} already there; {s['rejects']} failed their checker")


@app.command(help="Re-run the checkers over a planning, DPO or SFT set and print pass/fail by domain and flaw type. "
    "A DPO pair passes when chosen passes and rejected fails; records without a structured instance are "
    "'unchecked'. Exits 1 if anything fails.\n\n"
    "Example: datakit synth verify data/dpo/procedural")
def verify(
    folder: Path = typer.Argument(..., help="a set folder (with records/*.jsonl) or one .jsonl file"),
    as_json: bool = typer.Option(False, "--json", help="print the counts as JSON"),
) -> None:
    from datakit.synth.verify import verify_folder

    report = verify_folder(folder)
    if as_json:
        typer.echo(json.dumps({"ok": report.ok, "counts": [{"kind": k, "domain": d, "flaw": f, **c}
                                                           for (k, d, f), c in sorted(report.counts.items())]}))
    else:
        typer.echo(report.format())
    if not report.ok:
        raise typer.Exit(1)
