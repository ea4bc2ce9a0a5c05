"""datakit.contract: the built mixture (Contract 2) and the record types (Contract 3), typed once.

Everything that reads a built mixture reads it through here: datakit's accounting and reports, the
engine (datakit_titan), eval, export, and a user's own train.py. Depends on numpy and pydantic only.

    from datakit.contract import PackedCursor, open_mixture

    mix = open_mixture("data/mixtures/smoke")         # strict manifest + every file's sha256 (verify=False skips)
    for doc in mix.source("gsm8k").documents():       # Document(tokens, loss_mask), the manifest's token dtype
        ...
    cursor = PackedCursor(mix, seq_len=256, rank=0, world_size=1)   # packed windows, resumable (state_dict)
    inputs, labels, positions = cursor.next_window()

Modules: manifest (the models, load/write, the uint16 rule), shards (the .ds/.ds.index/.ds.loss files),
layouts (docs / sft / dpo_pairs and the rows made of them), reader (open_mixture, per-source documents),
cursors (the one base cursor; packed windows and example rows), verify (every file against the manifest),
accounting (accounting.duckdb's tables and typed row), records (Contract 3: SFT, DPO, planning records).
"""

from datakit.contract.accounting import DB_NAME, DOC_COLUMNS, DocRow
from datakit.contract.manifest import (
    FORMAT,
    MANIFEST_NAME,
    UINT16_VOCAB_LIMIT,
    Layout,
    Manifest,
    Shard,
    SourceEntry,
    TokenizerInfo,
    load_manifest,
    sha256_file,
    token_size_for_vocab,
    write_manifest,
)
from datakit.contract.cursors import Cursor, ExampleCursor, PackedCursor, Window
from datakit.contract.layouts import IGNORE_INDEX, LAYOUTS, example_row
from datakit.contract.reader import Document, Mixture, ShardDocs, SourceDocs, open_mixture
from datakit.contract.shards import read_shard, structure_problems, token_dtype
from datakit.contract.verify import Problem, VerifyReport, verify_mixture

__all__ = [
    "DB_NAME", "DOC_COLUMNS", "DocRow", "FORMAT", "MANIFEST_NAME", "UINT16_VOCAB_LIMIT", "Layout", "Manifest", "Shard",
    "SourceEntry", "TokenizerInfo", "load_manifest", "sha256_file", "token_size_for_vocab", "write_manifest", "read_shard",
    "structure_problems", "token_dtype", "Problem", "VerifyReport", "verify_mixture", "Cursor", "ExampleCursor", "PackedCursor",
    "Window", "IGNORE_INDEX", "LAYOUTS", "example_row", "Document", "Mixture", "ShardDocs", "SourceDocs", "open_mixture",
]
