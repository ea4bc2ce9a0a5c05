"""Hugging Face datasets' parquet: one row per document, `input_ids` (list of uint16 / uint32 token ids, the
manifest's width) and, where the source has one, `loss_mask` (list of uint8)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datakit.contract.reader import Mixture

ROWS_PER_GROUP = 10_000


def write_parquet(mix: Mixture, out: Path) -> list[Path]:
    ids_type = pa.list_(pa.uint16() if mix.manifest.tokenizer.token_size_bytes == 2 else pa.uint32())
    written = []
    for src in mix.sources:
        if not src.n_docs:
            continue
        schema = pa.schema([("input_ids", ids_type)] + ([("loss_mask", pa.list_(pa.uint8()))] if src.has_loss else []))
        path = out / src.name / "data-00000.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(path, schema) as w:
            batch = []
            for d in src.documents():
                batch.append(d)
                if len(batch) == ROWS_PER_GROUP:
                    w.write_table(_table(batch, schema))
                    batch = []
            if batch:
                w.write_table(_table(batch, schema))
        written.append(path)
    return written


def _table(docs, schema: pa.Schema) -> pa.Table:
    cols = {"input_ids": [d.tokens.tolist() for d in docs]}
    if "loss_mask" in schema.names:
        cols["loss_mask"] = [d.loss_mask.tolist() if d.loss_mask is not None else [1] * len(d.tokens) for d in docs]
    return pa.table(cols, schema=schema)
