"""Contract 2: the manifest of a built mixture, the one typed definition every consumer reads.

Layout of a built mixture folder:

    <output>/manifest.json        this model, written last (atomic rename): its presence means "complete"
    <output>/tokens/<source>/*.ds tokenized shards in datatrove's format (datakit.contract.shards): little-endian
                                  tokens of `tokenizer.token_size_bytes` bytes, `.ds.index` = uint64 cumulative
                                  document ends (in tokens), `.ds.loss` = one byte (0/1) per token where a
                                  loss mask applies
    <output>/accounting.duckdb    per-document and per-shard counts (datakit.contract.accounting)
    <output>/report.md (+ .png)   what a person reads

Every document in a shard is `<s> text </s>` (bos and eos ids from `tokenizer`).

Every model here is strict: an unknown field is an error (a manifest from a newer datakit fails loudly
instead of being half-read). `format` names the contract version; a reader refuses a major version it does
not know.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from datakit.contract.layouts import Layout  # how a source's documents lie in its shards
from datakit.errors import UserError
from datakit.strict import Strict

MANIFEST_NAME = "manifest.json"
FORMAT = "datakit.mixture/1"


# The uint16 boundary: token ids 0..65,535 fit 2 bytes, so a vocabulary of exactly 65,536 entries is stored
# in 2 bytes per token; one entry more (65,537) needs ids up to 65,536 and therefore 4 bytes.
UINT16_VOCAB_LIMIT = 65_536


def token_size_for_vocab(vocab_size: int) -> int:
    """Bytes per token on disk for a vocabulary of `vocab_size` entries: 2 up to 65,536, else 4."""
    return 2 if vocab_size <= UINT16_VOCAB_LIMIT else 4


class TokenizerInfo(Strict):
    path: str
    sha256: str
    vocab_size: int
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    token_size_bytes: Literal[2, 4] = 2  # token_size_for_vocab(vocab_size); readers use this, never guess

    @model_validator(mode="after")
    def _uint16_rule(self) -> "TokenizerInfo":
        if self.token_size_bytes != token_size_for_vocab(self.vocab_size):
            raise ValueError(f"token_size_bytes {self.token_size_bytes} does not fit vocab_size {self.vocab_size:,} "
                             f"(the rule: 2 bytes up to {UINT16_VOCAB_LIMIT:,} entries, else 4)")
        return self


class Shard(Strict):
    path: str  # relative to the mixture folder, e.g. tokens/gsm8k/gsm8k-00000.ds
    size_bytes: int
    sha256: str
    n_tokens: int
    n_docs: int
    index_sha256: str
    loss_sha256: str | None = None  # set when a `.ds.loss` file accompanies the shard


class SourceEntry(Strict):
    name: str
    uri: str
    format: str
    revision: str | None = None  # pinned dataset revision (hf://) or None for local files
    docs_available: int
    tokens_available: int
    tokens_target: int
    tokens_written: int
    docs_written: int
    epochs: float  # tokens_written / tokens_available
    weight: float  # share of the mixture's written tokens, sums to 1 over sources
    shards: list[Shard] = Field(default_factory=list)
    # how the build got there (written by `datakit mix build`; optional for shards written by other tools)
    max_epochs: float | None = None  # the spec's repetition limit
    filters: list[dict] = Field(default_factory=list)  # per filter step: docs in/out, kept fraction
    read_stats: dict[str, int] = Field(default_factory=dict)  # documents read, missing blobs, ...
    layout: Layout = "docs"
    context_tokens: int = 0  # long-context filler tokens written (sources with `context`)


class Manifest(Strict):
    format: str = FORMAT
    name: str
    seq_len: int
    seed: int
    spec: dict
    spec_sha256: str
    tokenizer: TokenizerInfo
    sources: list[SourceEntry]
    total_tokens: int
    total_docs: int
    datakit_version: str
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    build_seconds: float | None = None
    notes: list[str] = Field(default_factory=list)  # the plan's notes (what a person should know about the numbers)
    inputs_sha256: str | None = None  # fingerprint of the input files: a rebuild with the same inputs is skipped
    decontamination: dict = Field(default_factory=dict)  # per eval set: n-grams indexed, documents removed

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        if v != FORMAT:
            raise ValueError(f"format {v!r} is not {FORMAT!r} (a mixture from another datakit version)")
        return v

    def source(self, name: str) -> SourceEntry:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def load_manifest(folder: str | os.PathLike) -> Manifest:
    """Read `<folder>/manifest.json`; a folder without one is an unfinished (or never started) build."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.exists():
        raise UserError("mixture folder does not exist", file=folder, fix="build it with `datakit mix build <spec.toml>`")
    if not path.exists():
        raise UserError(
            "no manifest.json: the build is unfinished or was never run",
            file=folder,
            fix="run (or rerun, it resumes) `datakit mix build <spec.toml>`",
        )
    try:
        return Manifest.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValueError) as e:
        raise UserError(f"manifest is not valid: {e}", file=path, fix="rebuild the mixture") from e


def write_manifest(folder: str | os.PathLike, manifest: Manifest) -> Path:
    """Write the manifest atomically (temp file + rename): it is the build's completion marker."""
    folder = Path(folder)
    tmp = folder / (MANIFEST_NAME + ".tmp")
    tmp.write_text(manifest.model_dump_json(indent=2))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST_NAME)
    return folder / MANIFEST_NAME
