"""Curation figures a person reads: kept fractions per step and the filters worth calling out."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from datakit.contract.accounting import MIXTURE_STEPS
from datakit.curate.records import load_removed, load_step_stats

# a step keeping more than this fraction of documents (or less than 1 - it) is called out
CALLOUT_KEEP_ABOVE = 0.99
CALLOUT_KEEP_BELOW = 0.01


def callouts(step_rows: list[dict]) -> list[str]:
    """One line per step that keeps > 99% or < 1% of its documents: such a filter either does
    nothing (fineweb-edu's `score > 0.7` on data already kept at ~3+) or removes nearly everything."""
    out = []
    for r in step_rows:
        f = r.get("kept_docs_frac")
        if f is None or r["step"] in MIXTURE_STEPS:
            continue
        if f > CALLOUT_KEEP_ABOVE:
            out.append(f"{r['source']}: filter {r['step']!r} keeps {f:.1%} of documents "
                       f"({r['docs_out']}/{r['docs_in']}): it barely filters anything")
        elif f < CALLOUT_KEEP_BELOW:
            out.append(f"{r['source']}: filter {r['step']!r} keeps {f:.1%} of documents "
                       f"({r['docs_out']}/{r['docs_in']}): it removes nearly everything")
    return out


def decontamination_report(records_dir: Path, sets: dict[str, dict[str, int]], n_examples: int = 3) -> dict:
    """Per eval set: items, items hit, training documents and tokens removed, example matches."""
    report = {name: {**v, "items_hit": 0, "docs_removed": 0, "tokens_removed": 0, "chars_removed": 0,
                     "examples": []} for name, v in sets.items()}
    hit: dict[str, set] = defaultdict(set)
    for row in load_removed(records_dir):
        if row["step"] != "decontaminate" or not row["detail"]:
            continue
        item, _, ngram = row["detail"].partition(": ")
        name = item.rsplit("#", 1)[0]
        if name not in report:
            continue
        r = report[name]
        hit[name].add(item)
        r["docs_removed"] += 1
        r["tokens_removed"] += row["n_tokens"] or 0
        r["chars_removed"] += row["n_chars"]
        if len(r["examples"]) < n_examples:
            r["examples"].append({"id": row["id"], "source": row["source"], "item": item, "ngram": ngram})
    for name, items in hit.items():
        report[name]["items_hit"] = len(items)
    return report


def format_step_table(step_rows: list[dict]) -> str:
    """Plain-text table: source, step, docs in/out, tokens in/out, kept %."""
    head = f"{'source':<20} {'step':<32} {'docs_in':>9} {'docs_out':>9} {'kept':>7} {'tokens_in':>11} {'tokens_out':>11}"
    lines = [head]
    for r in step_rows:
        kept = f"{r['kept_docs_frac']:.1%}" if r["kept_docs_frac"] is not None else "-"
        ti = r["tokens_in"] if r["tokens_in"] is not None else "-"
        to = r["tokens_out"] if r["tokens_out"] is not None else "-"
        lines.append(f"{r['source'][:20]:<20} {r['step'][:32]:<32} {r['docs_in']:>9} {r['docs_out']:>9} "
                     f"{kept:>7} {ti:>11} {to:>11}")
    return "\n".join(lines)


def kept_fractions(step_rows: list[dict]) -> dict[str, dict[str, float | None]]:
    """Per source, the fraction of documents / tokens surviving all its recorded steps (filters,
    dedup, decontamination): what the planner multiplies a source's availability by."""
    first: dict[str, dict] = {}
    last: dict[str, dict] = {}
    for r in sorted(step_rows, key=lambda r: (r["source"], r["order"])):
        first.setdefault(r["source"], r)
        last[r["source"]] = r
    out = {}
    for src, f in first.items():
        lo = last[src]
        out[src] = {
            "docs": lo["docs_out"] / f["docs_in"] if f["docs_in"] else None,
            "tokens": lo["tokens_out"] / f["tokens_in"] if f["tokens_in"] else None,
        }
    return out


__all__ = ["kept_fractions", "callouts", "decontamination_report", "format_step_table", "load_step_stats"]
