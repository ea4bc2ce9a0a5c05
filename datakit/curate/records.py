"""Removal records and per-step counts: what curation cost each source, on disk.

Layout under `records_dir` (all plain JSON lines, one file per datatrove task, rewritten whole when a
task reruns, so a resumed run never duplicates rows):

    records_dir/removed/<source>/<step_folder>/<rank>.jsonl
        one row per removed document:
        {"id": str, "source": str, "step": str, "reason": str, "detail": str | null,
         "n_chars": int, "n_tokens": int | null}
        step:   the filter as written ("metadata.score >= 3", "gopher_quality") or a mixture-wide
                step: "exact_dedup", "minhash_dedup", "decontaminate"
        reason: datatrove's filter reason ("gopher_short_doc", "dup_line_frac", ...), "false" for
                an expression that did not hold, "duplicate" for dedup, "contaminated" for decont
        detail: expression value ("metadata.score=2.1"), duplicate-of document id, or
                "<benchmark>#<item id>: <matching n-gram>"
    records_dir/steps/<scope>/<step_folder>/<rank>.jsonl
        one row per (source, step) seen by that task:
        {"source", "step", "order", "docs_in", "docs_out", "tokens_in", "tokens_out",
         "chars_in", "chars_out"}
        scope is the source name for per-source filters and "_mixture" for mixture-wide steps;
        order is the step's position (filters 0.., then 100 exact, 101 minhash, 102 decontaminate).

n_tokens / tokens_* are counted with the mixture tokenizer (null when none is configured). Load
with `load_removed` / `load_step_stats`, or in DuckDB with `duckdb_views_sql(records_dir)`.
"""

from __future__ import annotations

import glob
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.jsonl import JsonlWriter

MIXTURE_SCOPE = "_mixture"
STEP_ORDER = {"exact_dedup": 100, "minhash_dedup": 101, "decontaminate": 102}


class TokenCounter:
    """Counts tokens with the mixture tokenizer, loaded lazily in the worker that uses it (a Rust
    tokenizer used in the parent before datatrove forks its workers can hang the run). Caches the
    count in `doc.metadata["_n_tokens"]` so later steps do not count again."""

    def __init__(self, tokenizer_path: str | None):
        self.tokenizer_path = tokenizer_path
        self._tok = None

    def __getstate__(self):
        return {"tokenizer_path": self.tokenizer_path, "_tok": None}

    def __call__(self, doc: Document) -> int | None:
        if self.tokenizer_path is None:
            return None
        n = doc.metadata.get("_n_tokens")
        if n is None:
            if self._tok is None:
                from tokenizers import Tokenizer

                self._tok = Tokenizer.from_file(str(self.tokenizer_path))
            n = len(self._tok.encode(doc.text, add_special_tokens=False).ids)
            doc.metadata["_n_tokens"] = n
        return n


def _removal_row(writer: "RemovalWriter", doc: Document) -> dict:
    md = doc.metadata
    reason, detail = writer.reason_fn(doc) if writer.reason_fn else (md.get("filter_reason") or "removed", None)
    if detail is None:
        detail = md.get("_curate_detail")
    return {
        "id": doc.id,
        "source": md.get("_source", writer.source),
        "step": writer.step,
        "reason": reason,
        "detail": detail,
        "n_chars": len(doc.text),
        "n_tokens": writer.counter(doc),
    }


class RemovalWriter(JsonlWriter):
    """datatrove exclusion writer that stores one removal record per dropped document.

    step: step name on record; folder: its folder under removed/<source>/;
    reason_fn: optional doc -> (reason, detail) for steps whose datatrove block sets no reason.
    """

    def __init__(self, records_dir: Path | str, *, step: str, folder: str, source: str | None,
                 counter: TokenCounter, reason_fn: Callable[[Document], tuple[str, str | None]] | None = None):
        src = source if source is not None else "${_source}"
        super().__init__(
            str(Path(records_dir) / "removed"), output_filename=f"{src}/{folder}/${{rank}}.jsonl",
            compression=None, adapter=_removal_row,
        )
        self.step = step
        self.source = source
        self.counter = counter
        self.reason_fn = reason_fn


class CountedStep(PipelineStep):
    """Wraps a datatrove step: counts docs/tokens/chars in and out per source and writes one
    steps/ row per source when the task ends (atomically: temp file + os.replace)."""

    def __init__(self, inner: PipelineStep, *, records_dir: Path | str, step: str, folder: str,
                 order: int, scope: str, source: str | None, counter: TokenCounter):
        super().__init__()
        self.inner = inner
        self.name = inner.name
        self.type = inner.type
        self.stats = inner.stats
        self.records_dir = str(records_dir)
        self.step = step
        self.folder = folder
        self.order = order
        self.scope = scope
        self.source = source
        self.counter = counter

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
        counter = self.counter

        def counted_in():
            for doc in data:
                c = counts[doc.metadata.get("_source", self.source)]
                c[0] += 1
                c[2] += counter(doc) or 0
                c[4] += len(doc.text)
                yield doc

        for doc in self.inner.run(counted_in(), rank, world_size):
            c = counts[doc.metadata.get("_source", self.source)]
            c[1] += 1
            c[3] += counter(doc) or 0
            c[5] += len(doc.text)
            yield doc
        has_tokens = counter.tokenizer_path is not None
        rows = [
            {"source": src, "step": self.step, "order": self.order, "docs_in": c[0], "docs_out": c[1],
             "tokens_in": c[2] if has_tokens else None, "tokens_out": c[3] if has_tokens else None,
             "chars_in": c[4], "chars_out": c[5]}
            for src, c in sorted(counts.items())
        ]
        path = Path(self.records_dir) / "steps" / self.scope / self.folder / f"{rank:05d}.jsonl"
        write_jsonl_atomic(path, rows)


def write_jsonl_atomic(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, path)


def _read_rows(pattern: str) -> list[dict]:
    rows = []
    for p in sorted(glob.glob(pattern, recursive=True)):
        with open(p) as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


def load_removed(records_dir: Path | str) -> list[dict]:
    """Every removal record (rows as documented above)."""
    return _read_rows(str(Path(records_dir) / "removed" / "*" / "*" / "*.jsonl"))


def load_step_stats(records_dir: Path | str) -> list[dict]:
    """Per (source, step) totals over all tasks, sorted by source then step order, with
    `kept_docs_frac` / `kept_tokens_frac` added (None when nothing came in / no tokenizer)."""
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for row in _read_rows(str(Path(records_dir) / "steps" / "*" / "*" / "*.jsonl")):
        key = (row["source"], row["step"])
        if key not in acc:
            acc[key] = {**row}
            continue
        for k in ("docs_in", "docs_out", "tokens_in", "tokens_out", "chars_in", "chars_out"):
            if row[k] is not None:
                acc[key][k] = (acc[key][k] or 0) + row[k]
    out = []
    for row in sorted(acc.values(), key=lambda r: (r["source"], r["order"], r["step"])):
        row["kept_docs_frac"] = row["docs_out"] / row["docs_in"] if row["docs_in"] else None
        row["kept_tokens_frac"] = (row["tokens_out"] / row["tokens_in"]
                                   if row["tokens_in"] else None)
        out.append(row)
    return out


def duckdb_views_sql(records_dir: Path | str) -> str:
    """SQL creating DuckDB views `curation_removed` and `curation_steps` over the record files."""
    rd = Path(records_dir).as_posix()
    return (
        f"CREATE OR REPLACE VIEW curation_removed AS SELECT * FROM read_json("
        f"'{rd}/removed/*/*/*.jsonl', format='newline_delimited', columns={{id: 'VARCHAR', source: 'VARCHAR', "
        f"step: 'VARCHAR', reason: 'VARCHAR', detail: 'VARCHAR', n_chars: 'BIGINT', n_tokens: 'BIGINT'}});\n"
        f"CREATE OR REPLACE VIEW curation_steps AS SELECT source, step, min(\"order\") AS \"order\", "
        f"sum(docs_in) AS docs_in, sum(docs_out) AS docs_out, sum(tokens_in) AS tokens_in, "
        f"sum(tokens_out) AS tokens_out, sum(chars_in) AS chars_in, sum(chars_out) AS chars_out "
        f"FROM read_json('{rd}/steps/*/*/*.jsonl', format='newline_delimited', columns={{source: 'VARCHAR', "
        f"step: 'VARCHAR', \"order\": 'INTEGER', docs_in: 'BIGINT', docs_out: 'BIGINT', tokens_in: 'BIGINT', "
        f"tokens_out: 'BIGINT', chars_in: 'BIGINT', chars_out: 'BIGINT'}}) GROUP BY source, step;\n"
    )


def clear_records(records_dir: Path | str, source: str) -> None:
    """Forget a source's per-source filter records (call before rebuilding it from scratch, e.g.
    with a different task count, so stale per-task files do not linger). Mixture-wide steps are
    managed by run_curation."""
    import shutil

    root = Path(records_dir)
    for p in (root / "removed" / source).glob("f*"):
        shutil.rmtree(p, ignore_errors=True)
    shutil.rmtree(root / "steps" / source, ignore_errors=True)
