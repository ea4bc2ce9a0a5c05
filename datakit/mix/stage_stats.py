"""What the build's stages report, read back from their logs and records: documents read per source,
per-step filter counts, and the one error that says where a source's documents were all lost."""

from __future__ import annotations

import json

from datakit.contract.accounting import MIXTURE_STEPS
from datakit.curate.records import load_step_stats
from datakit.errors import UserError
from datakit.mix import pipeline as P
from datakit.spec.mixture import MixtureSpec


def read_stats(work: P.Work, source: str) -> dict[str, int]:
    """Counters from datatrove's stats of the prepare stage: docs read, blobs hydrated/missing, empty texts, sampled out."""
    path = work.logs("prepare", source) / "stats.json"
    if not path.exists():  # read and tokenized in one pass
        path = work.logs("tokenize", source) / "stats.json"
    if not path.exists():
        return {}
    try:
        steps = json.loads(path.read_text())
    except ValueError:  # the merged file was cut short (a full disk after the tasks finished): merge the tasks' own again
        from datatrove.utils.stats import PipelineStats

        merged = sum((PipelineStats.from_json(json.loads(f.read_text())) for f in sorted((path.parent / "stats").glob("*.json"))),
                     start=PipelineStats())
        path.write_text(merged.to_json())
        steps = json.loads(path.read_text())
    out: dict[str, int] = {}
    for step in steps:
        stats = step.get("stats", {})
        if "READER" in step.get("name", "") and "documents" in stats:
            out["docs_read"] = int(stats["documents"]["total"] if isinstance(stats["documents"], dict) else stats["documents"])
        for key in ("hydrated", "missing_blob", "empty_text", "dropped"):
            if key in stats:
                v = stats[key]
                out["sampled_out" if key == "dropped" else key] = int(v["total"] if isinstance(v, dict) else v)
    return out


def load_filter_stats(work: P.Work) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in load_step_stats(work.records):
        d = dict(row)
        if d.get("docs_in"):
            d["kept_docs_frac"] = d["docs_out"] / d["docs_in"]
        if d.get("tokens_in"):
            d["kept_tokens_frac"] = d["tokens_out"] / d["tokens_in"]
        out.setdefault(d["source"], []).append(d)
    return out


def empty_sources_error(spec: MixtureSpec, work: P.Work, names: list[str]) -> UserError:
    """"no documents left after filters in source X (kept 0 of N ...)": where they were lost, step by step."""
    stats = load_filter_stats(work)
    parts = []
    for name in names:
        steps = stats.get(name, [])
        read = read_stats(work, name).get("docs_read")
        first_empty = next((f for f in steps if f.get("docs_in") and not f.get("docs_out")), None)
        if first_empty is not None:
            where = "curation" if first_empty["step"] in MIXTURE_STEPS else "filters"
            parts.append(f"no documents left after {where} in source {name} (kept 0 of {first_empty['docs_in']:,} at {first_empty['step']!r}"
                         + (f"; {read:,} read" if read is not None else "") + ")")
        elif read == 0:
            parts.append(f"no documents read from source {name} (its files hold no rows)")
        else:
            parts.append(f"no documents left after filters in source {name} (kept 0 of {read if read is not None else '?'})")
    return UserError("; ".join(parts), file=spec.path, field=f"source.{names[0]}.filters",
                     fix=f"loosen its filters{' or [curate]' if spec.curate else ''}, or check the input files "
                         f"(what was removed and why: {work.records / 'removed'})")


def decontamination_summary(work: P.Work) -> dict:
    path = work.root / "curation_summary.json"
    return json.loads(path.read_text()).get("decontamination", {}) if path.exists() else {}
