"""Metadata expressions: `<path> <op> <value>`, e.g. `int_score >= 3`, `metadata.score >= 3`,
`metadata.language == "en"`.

The path is dotted and starts at a column of the upstream record (the builder's
`Document.metadata`). It walks nested structs (fineweb-edu-dedup's `metadata.score`) and JSON-string
columns alike (finemath's `metadata` is a JSON string: `metadata.warc_id` parses it). Operators:
`>=`, `<=`, `>`, `<`, `==`, `!=`. Values: numbers, quoted strings, true, false, null.

A document whose path is missing or whose value cannot be compared is removed with reason
`missing:<path>` / `not_comparable:<path>`, so a typo in a nested key shows up as a filter that keeps
~0% in the report (top-level columns are checked before any processing).
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from datakit.errors import UserError

OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt}
_EXPR = re.compile(r"^\s*([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)\s*(>=|<=|==|!=|>|<)\s*(.+?)\s*$")
_MISSING = object()


@dataclass(frozen=True)
class Expression:
    path: str
    op: str
    value: Any

    @property
    def column(self) -> str:
        return self.path.split(".", 1)[0]


def _parse_value(raw: str) -> Any:
    if raw in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[raw]
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    try:
        return int(raw)
    except ValueError:
        return float(raw)  # raises ValueError for anything else


def parse_expression(text: str, *, file: str, field: str) -> Expression:
    m = _EXPR.match(text)
    value: Any = _MISSING
    if m:
        try:
            value = _parse_value(m.group(3))
        except ValueError:
            value = _MISSING
    if not m or value is _MISSING:
        raise UserError(
            f"cannot parse filter expression {text!r}", file=file, field=field,
            fix="write '<column>[.<key>...] <op> <value>' with op one of >= <= > < == != and a number, "
            "a quoted string, true, false or null, e.g. 'metadata.score >= 3'",
        )
    return Expression(path=m.group(1), op=m.group(2), value=value)


def resolve(record: dict, path: str) -> Any:
    """Value at a dotted path; JSON-string values on the way are parsed. `_MISSING` if absent."""
    cur: Any = record
    for key in path.split("."):
        if isinstance(cur, str):
            try:
                cur = json.loads(cur)
            except ValueError:
                return _MISSING
        if isinstance(cur, dict) and key in cur:
            cur = cur[key]
        elif isinstance(cur, list) and key.isdigit() and int(key) < len(cur):
            cur = cur[int(key)]
        else:
            return _MISSING
    return cur


def check_columns(expr: Expression, columns: set[str] | None, *, file: str, field: str,
                  sample: dict | None = None) -> None:
    """Raise a UserError when the expression's column is not among `columns` (or, given a sample
    record, when its nested path does not resolve in it)."""
    if columns is not None and expr.column not in columns:
        raise UserError(
            f"filter uses column {expr.column!r}, which this source does not have", file=file, field=field,
            fix=f"use one of its columns: {', '.join(sorted(columns))}"
            + ("; or add a quality_score filter before it to create score/int_score"
               if expr.column in ("score", "int_score") else ""),
        )
    if sample is not None and resolve(sample, expr.path) is _MISSING:
        raise UserError(
            f"filter path {expr.path!r} does not resolve in the first record of this source", file=file, field=field,
            fix=f"check the nested key names; the record's columns are {', '.join(sorted(sample))}",
        )


class ExpressionFilter(BaseFilter):
    """Keep documents whose metadata value at `path` compares true with `value`."""

    name = "🧮 Metadata expression"

    def __init__(self, expr: Expression, exclusion_writer=None):
        super().__init__(exclusion_writer=exclusion_writer)
        self.expr = expr
        self._op = OPS[expr.op]

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        got = resolve(doc.metadata, self.expr.path)
        if got is _MISSING:
            return False, f"missing:{self.expr.path}"
        if isinstance(self.expr.value, (int, float)) and isinstance(got, str):
            try:
                got = float(got)
            except ValueError:
                return False, f"not_comparable:{self.expr.path}"
        try:
            keep = self._op(got, self.expr.value)
        except TypeError:
            return False, f"not_comparable:{self.expr.path}"
        if keep:
            return True
        doc.metadata["_curate_detail"] = f"{self.expr.path}={got!r}"[:200]
        return False, "false"
