"""Write an export folder under a temporary name and rename it at the end: a folder named like an
export is always a complete one (an interrupted export leaves only `.<name>.partial`, replaced next time)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from datakit.errors import UserError


@contextmanager
def staged_folder(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `out`; on success it becomes `out` (force: replace an
    existing `out`; without it an existing, non-empty `out` is refused)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a folder", file=out, field="--out", fix="pick another --out")
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError("already holds an export", file=out, field="--out", fix="pass --force to replace it, or pick another --out")
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old"
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
