"""Contract 2: the manifest of a built mixture, the only thing training engines read.

Layout of a built mixture folder:

    <output>/manifest.json        this model, written last (atomic rename): its presence means "complete"
    <output>/tokens/<source>/*.ds tokenized shards in datatrove's format: little-endian uint16 tokens
                                  (uint32 when the vocab exceeds 65,536), `.ds.index` = uint64 cumulative
                                  document ends (in tokens), `.ds.loss` = one byte (0/1) per token where a
                                  loss mask applies
    <output>/accounting.duckdb    per-document and per-shard counts
    <output>/report.md (+ .png)   what a person reads

Every document in a shard is `<s> text </s>` (bos and eos ids from `tokenizer`).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from datakit.errors import UserError

MANIFEST_NAME = "manifest.json"
FORMAT = "datakit.mixture/1"


class TokenizerInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str
    vocab_size: int
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    token_size_bytes: int = 2  # 2 for vocab <= 65,536, else 4


class Shard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str  # relative to the mixture folder, e.g. tokens/gsm8k/00000.ds
    size_bytes: int
    sha256: str
    n_tokens: int
    n_docs: int
    index_sha256: str
    loss_sha256: str | None = None  # set when a `.ds.loss` file accompanies the shard


class SourceEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
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


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")
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


def verify_shards(folder: str | os.PathLike, manifest: Manifest | None = None) -> None:
    """Full verification (datakit.mix.verify.verify_mixture); raise IntegrityError listing every bad file."""
    from datakit.mix.verify import verify_mixture

    verify_mixture(folder, manifest=manifest).raise_if_bad()


def token_dtype(manifest_or_size: Manifest | int) -> np.dtype:
    size = manifest_or_size.tokenizer.token_size_bytes if isinstance(manifest_or_size, Manifest) else manifest_or_size
    return np.dtype("<u2") if size == 2 else np.dtype("<u4")


def read_shard(path: str | os.PathLike, token_size_bytes: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Memory-map one shard: (tokens, doc_ends, loss_mask or None). doc_ends[i] is the end of doc i in tokens.

    The index and loss mask are checked against the token count on every open (IntegrityError if broken)."""
    from datakit.errors import IntegrityError
    from datakit.mix.verify import structure_problems

    path = Path(path)
    index_path, loss_path = Path(f"{path}.index"), Path(f"{path}.loss")

    def damaged(what: str, where: Path) -> IntegrityError:
        return IntegrityError(f"shard is damaged: {what}", file=where,
                              fix="rebuild the mixture: `datakit mix build <spec.toml>` (`datakit verify <mixture>` lists every bad file)")

    for p in (path, index_path):
        if not p.exists():
            raise damaged("file is missing", p)
    size, index_size = path.stat().st_size, index_path.stat().st_size
    if size % token_size_bytes or index_size % 8:
        raise damaged(f"{size:,} token bytes / {index_size:,} index bytes are not whole tokens / document ends", path)
    tokens = np.memmap(path, dtype=token_dtype(token_size_bytes), mode="r") if size else np.zeros(0, token_dtype(token_size_bytes))
    doc_ends = np.fromfile(index_path, dtype="<u8")
    loss = np.memmap(loss_path, dtype=np.uint8, mode="r") if loss_path.exists() and loss_path.stat().st_size else None
    problems = structure_problems(len(tokens), doc_ends, len(loss) if loss is not None else (0 if loss_path.exists() else None))
    if problems:
        raise damaged("; ".join(problems), path)
    return tokens, doc_ends, loss
