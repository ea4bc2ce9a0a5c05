"""Resolve a source URI to what a datatrove reader needs: a folder and a glob, or a hub dataset.

    file://data/raw/gsm8k/*.parquet     local (or fsspec) files, relative to the current directory
    samples://openai__gsm8k/main/train-*.parquet   datakit's embedded samples
    synth://data/synth/planning          a `datakit synth` output folder (its records/*.jsonl)
    hf://HuggingFaceTB/finemath          a hub dataset, streamed (config/split/revision from the spec)
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from datakit.errors import UserError

_GLOB_CHARS = re.compile(r"[*?\[]")
READABLE = (".parquet", ".jsonl", ".jsonl.gz", ".json.gz", ".jsonl.zst")


@dataclass(frozen=True)
class LocalFiles:
    folder: str  # the longest glob-free folder
    pattern: str  # glob relative to folder
    files: tuple[str, ...]  # relative to folder, sorted
    kind: str  # "parquet" | "jsonl"


def samples_dir() -> Path:
    from datakit import samples

    return Path(getattr(samples, "SAMPLES_DIR", Path(samples.__file__).parent))


def local_pattern(uri: str) -> str:
    scheme, rest = uri.split("://", 1)
    if scheme == "file":
        return rest
    if scheme == "samples":
        return str(samples_dir() / rest)
    if scheme == "synth":
        return str(Path(rest) / "records" / "*.jsonl")
    raise ValueError(uri)


def resolve_local(uri: str, *, file: str, field: str) -> LocalFiles:
    """List the files a local URI names; an empty glob or unreadable type is a UserError."""
    pattern = local_pattern(uri)
    parts = Path(pattern).parts
    cut = next((i for i, p in enumerate(parts) if _GLOB_CHARS.search(p)), len(parts))
    if cut == len(parts):  # a plain path: a file or a folder
        p = Path(pattern)
        if p.is_dir():
            folder, rel = p, "**/*"
        else:
            folder, rel = p.parent, p.name
    else:
        folder, rel = Path(*parts[:cut]) if cut else Path("."), str(Path(*parts[cut:]))
    matched = sorted(
        os.path.relpath(m, folder) for m in glob.glob(str(folder / rel), recursive=True) if os.path.isfile(m)
    )
    files = [f for f in matched if f.endswith(READABLE)]
    if not files:
        hint = "run `datakit synth planning ...` first" if uri.startswith("synth://") else "check the path and glob"
        what = f"no readable files match {pattern!r}" + (f" ({len(matched)} files of other types)" if matched else "")
        raise UserError(what, file=file, field=field, fix=f"{hint}; readable types: {', '.join(READABLE)}")
    kinds = {"parquet" if f.endswith(".parquet") else "jsonl" for f in files}
    if len(kinds) > 1:
        raise UserError("the glob mixes parquet and jsonl files", file=file, field=field, fix="point the source at one file type")
    return LocalFiles(str(folder), rel, tuple(files), kinds.pop())


def read_columns(local: LocalFiles) -> set[str]:
    """Top-level column names of the first file (parquet schema, or the first JSON line)."""
    first = os.path.join(local.folder, local.files[0])
    if local.kind == "parquet":
        import pyarrow.parquet as pq

        return set(pq.read_schema(first).names)
    import gzip
    import json

    opener = gzip.open if first.endswith(".gz") else open
    with opener(first, "rt") as f:
        for line in f:
            if line.strip():
                return set(json.loads(line))
    return set()
