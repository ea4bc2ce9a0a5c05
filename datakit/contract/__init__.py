"""datakit.contract: the built mixture (Contract 2) and the record types (Contract 3), typed once.

Everything that reads a built mixture reads it through here: datakit's accounting and reports, the
engine (datakit_titan), eval, export, and a user's own train.py. Depends on numpy and pydantic only.

    from datakit.contract import load_manifest, read_shard, verify_mixture

    m = load_manifest("data/mixtures/smoke")              # strict Manifest (unknown fields are an error)
    verify_mixture("data/mixtures/smoke").raise_if_bad()  # sizes, sha256, structure, accounting totals
    tokens, doc_ends, loss = read_shard(folder / m.sources[0].shards[0].path, m.tokenizer.token_size_bytes)
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
from datakit.contract.shards import read_shard, structure_problems, token_dtype
from datakit.contract.verify import Problem, VerifyReport, verify_mixture

__all__ = [
    "DB_NAME", "DOC_COLUMNS", "DocRow", "FORMAT", "MANIFEST_NAME", "UINT16_VOCAB_LIMIT", "Layout", "Manifest", "Shard",
    "SourceEntry", "TokenizerInfo", "load_manifest", "sha256_file", "token_size_for_vocab", "write_manifest", "read_shard",
    "structure_problems", "token_dtype", "Problem", "VerifyReport", "verify_mixture",
]
