"""`<output>/accounting.duckdb` (Contract 2): the tables and the one typed row of its `docs` table.

Tables
  docs(source, shard, position, doc_id, tokens, chars, score, epoch,     one `DocRow` per written document occurrence
       context_tokens, prompt_tokens, completion_tokens, pair, role)
  shards(source, shard, path, tokens, docs, size_bytes, sha256)          one row per shard of the manifest
  sources(name, uri, format, revision, docs_available, tokens_available, tokens_target, tokens_written,
          docs_written, epochs, weight)                                  one row per source of the manifest
  removed(...) and curation_steps(...)                                   when curation recorded removals

The file is written by datakit.accounting (DuckDB); this module only names its shape, so a reader of the
contract needs neither DuckDB nor pyarrow to know it.
"""

from __future__ import annotations

from typing import NamedTuple

DB_NAME = "accounting.duckdb"
# steps of [curate] (mixture-wide) as named in `removed` / `curation_steps`; every other step is a per-source filter
MIXTURE_STEPS = ("exact_dedup", "minhash_dedup", "decontaminate")


class DocRow(NamedTuple):
    """One written document occurrence (a document written twice, in two epochs, is two rows)."""

    source: str
    shard: str  # file name of the shard, e.g. gsm8k-00000.ds
    position: int  # index of the occurrence among the source's written documents
    doc_id: str
    tokens: int  # tokens written, <s> and </s> (and long-context filler) included
    chars: int  # characters of the formatted text
    score: float | None  # quality score where a scorer ran
    epoch: int  # 0 for the first pass over the source, 1 for the first repetition, ...
    context_tokens: int  # long-context filler (SFT/DPO examples), else 0
    prompt_tokens: int | None  # SFT/DPO: prompt tokens (without <s>, context, separator); None for plain documents
    completion_tokens: int | None  # SFT/DPO: tokens with loss (completion + </s>)
    pair: int | None  # DPO: pair index within the source
    role: str | None  # DPO: chosen | rejected


DOC_COLUMNS = list(DocRow._fields)
# Arrow / DuckDB type of each `docs` column (pyarrow type names)
DOC_COLUMN_TYPES = {
    "source": "string", "shard": "string", "position": "int64", "doc_id": "string", "tokens": "int64", "chars": "int64",
    "score": "float64", "epoch": "int32", "context_tokens": "int64", "prompt_tokens": "int64", "completion_tokens": "int64",
    "pair": "int64", "role": "string",
}
SHARD_COLUMNS = ["source", "shard", "path", "tokens", "docs", "size_bytes", "sha256"]
SOURCE_COLUMNS = ["name", "uri", "format", "revision", "docs_available", "tokens_available", "tokens_target",
                  "tokens_written", "docs_written", "epochs", "weight"]
