"""A source's `filters` list, parsed into FilterSpecs and checked against the filters that exist.

Expressions ("metadata.score >= 3"), datatrove heuristic filters by name (filters.HEURISTIC_FILTERS) and the
quality scorer (scoring.SCORER_NAME). spec.py holds the FilterSpec type; this module knows the registries,
so the spec types import neither filters nor scoring.
"""

from __future__ import annotations

from datakit.curate.expressions import parse_expression
from datakit.curate.filters import HEURISTIC_FILTERS, check_params
from datakit.curate.scoring import SCORER_NAME, SCORER_PARAMS
from datakit.curate.spec import FilterSpec
from datakit.errors import UserError


def parse_filters(entries: list[str | dict], *, file: str, source: str) -> list[FilterSpec]:
    """Parse a source's `filters` list: expressions ("metadata.score >= 3"), datatrove heuristic
    filters by name ("gopher_quality" or {name = "gopher_repetition", dup_line_frac = 0.3}) and the
    quality scorer ({name = "quality_score", model = "path/to/classifier"})."""
    if not isinstance(entries, list):
        raise UserError(
            "filters must be a list", file=file, field=f"source.{source}.filters",
            fix='write filters = ["int_score >= 3", "gopher_quality"]',
        )
    out: list[FilterSpec] = []
    known = sorted([*HEURISTIC_FILTERS, SCORER_NAME])
    for i, entry in enumerate(entries):
        field = f"source.{source}.filters[{i}]"
        if isinstance(entry, str):
            text = entry.strip()
            if text in HEURISTIC_FILTERS or text == SCORER_NAME:
                name, params = text, {}
            elif any(op in text for op in ("<", ">", "=")):
                expr = parse_expression(text, file=file, field=field)
                out.append(FilterSpec(kind="expression", name=expr.path, params={"expr": text},
                                      label=text, index=i, field=field))
                continue
            else:
                raise UserError(
                    f"unknown filter {text!r}", file=file, field=field,
                    fix=f"use one of {', '.join(known)} or an expression like 'int_score >= 3'",
                )
        elif isinstance(entry, dict):
            params = dict(entry)
            name = params.pop("name", None)
            if not isinstance(name, str):
                raise UserError("a filter table needs a name", file=file, field=field,
                                fix=f'write {{ name = "gopher_repetition", ... }}; known: {", ".join(known)}')
            if name not in HEURISTIC_FILTERS and name != SCORER_NAME:
                raise UserError(f"unknown filter {name!r}", file=file, field=field,
                                fix=f"use one of {', '.join(known)}")
        else:
            raise UserError(f"a filter must be a string or a table, got {type(entry).__name__}",
                            file=file, field=field, fix='write "gopher_quality" or { name = "gopher_quality" }')
        if name == SCORER_NAME:
            bad = sorted(set(params) - set(SCORER_PARAMS))
            if bad:
                raise UserError(f"unknown parameter(s) {', '.join(bad)} for {name}", file=file, field=field,
                                fix=f"allowed: {', '.join(SCORER_PARAMS)}")
            if "model" not in params:
                raise UserError(f"{name} needs a model", file=file, field=field,
                                fix='write { name = "quality_score", model = "models/fineweb-edu-classifier" }')
            kind = "score"
        else:
            check_params(name, params, file=file, field=field)
            kind = "heuristic"
        label = name if not params else name + "(" + ", ".join(f"{k}={v!r}" for k, v in sorted(params.items())) + ")"
        out.append(FilterSpec(kind=kind, name=name, params=params, label=label, index=i, field=field))
    return out
