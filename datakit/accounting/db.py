"""`<output>/accounting.duckdb`: per-document and per-shard token counts, queryable with SQL.

The tables and the typed `docs` row are part of the contract (datakit.contract.accounting); this module
writes and queries the file with DuckDB.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa

from datakit.contract import DB_NAME, DocRow, Manifest, read_shard
from datakit.contract.accounting import DOC_COLUMN_TYPES, SOURCE_COLUMNS
from datakit.errors import UserError


def write_accounting(output: Path, manifest: Manifest, doc_rows: list[DocRow], records_dir: Path | None = None) -> Path:
    output = Path(output)
    tmp = output / (DB_NAME + ".tmp")
    for stale in (tmp, Path(f"{tmp}.wal")):  # a WAL left by an interrupted write would be replayed into the new file
        stale.unlink(missing_ok=True)
    cols = list(zip(*doc_rows)) if doc_rows else [[] for _ in DocRow._fields]
    docs = pa.table({name: pa.array(col, getattr(pa, DOC_COLUMN_TYPES[name])()) for name, col in zip(DocRow._fields, cols)})
    shards = pa.Table.from_pylist(
        [
            {"source": s.name, "shard": Path(sh.path).name, "path": sh.path, "tokens": sh.n_tokens, "docs": sh.n_docs,
             "size_bytes": sh.size_bytes, "sha256": sh.sha256}
            for s in manifest.sources for sh in s.shards
        ],
        schema=pa.schema([("source", pa.string()), ("shard", pa.string()), ("path", pa.string()), ("tokens", pa.int64()),
                          ("docs", pa.int64()), ("size_bytes", pa.int64()), ("sha256", pa.string())]),
    )
    sources = pa.Table.from_pylist(
        [
            {k: getattr(s, k) for k in SOURCE_COLUMNS}
            for s in manifest.sources
        ]
    )
    con = duckdb.connect(str(tmp))
    try:
        con.register("docs_arrow", docs)
        con.register("shards_arrow", shards)
        con.register("sources_arrow", sources)
        con.execute("create table docs as select * from docs_arrow")
        con.execute("create table shards as select * from shards_arrow")
        con.execute("create table sources as select * from sources_arrow")
        if records_dir is not None:
            _curation_tables(con, Path(records_dir))
        con.execute("checkpoint")  # everything into the file now: a failure (disk full) raises here, not silently at close
    finally:
        con.close()
    os.replace(tmp, output / DB_NAME)
    return output / DB_NAME


def write_accounting_from_shards(output: Path, manifest: Manifest) -> Path:
    """accounting.duckdb for shards written by another tool (test fixtures, a user's own writer): one `docs` row
    per document of every shard, read from its `.ds.index` (doc ids `<shard path>:<i>`, no chars or scores)."""
    rows = []
    for s in manifest.sources:
        for sh in s.shards:
            _, ends, _ = read_shard(Path(output) / sh.path, manifest.tokenizer.token_size_bytes)
            lengths = (ends.astype("int64") - [0, *ends[:-1].astype("int64")]).tolist()
            rows += [DocRow(s.name, Path(sh.path).name, len(rows) + i, f"{sh.path}:{i}", n, 0, None, 0, 0, None, None, None, None)
                     for i, n in enumerate(lengths)]
    return write_accounting(output, manifest, rows)


def _curation_tables(con: duckdb.DuckDBPyConnection, records_dir: Path) -> None:
    from datakit.curate.records import load_removed, load_step_stats

    removed, steps = load_removed(records_dir), load_step_stats(records_dir)
    if removed:
        con.register("removed_arrow", pa.Table.from_pylist(removed))
        con.execute("create table removed as select * from removed_arrow")
    if steps:
        con.register("steps_arrow", pa.Table.from_pylist(steps))
        con.execute("create table curation_steps as select * from steps_arrow")


def connect(output: str | os.PathLike, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    path = Path(output) / DB_NAME
    if not path.exists():
        raise UserError("no accounting.duckdb: not a built mixture", file=output, fix="build it with `datakit mix build <spec.toml>`")
    return duckdb.connect(str(path), read_only=read_only)


def query(output: str | os.PathLike, sql: str) -> tuple[list[str], list[tuple]]:
    con = connect(output)
    try:
        try:
            rel = con.execute(sql)
        except duckdb.Error as e:
            tables = [r[0] for r in con.execute("show tables").fetchall()]
            raise UserError(f"SQL failed: {e}", file=Path(output) / DB_NAME, fix=f"tables: {', '.join(tables)} (see docs/mixtures.md)") from None
        names = [d[0] for d in rel.description] if rel.description else []
        return names, rel.fetchall()
    finally:
        con.close()
