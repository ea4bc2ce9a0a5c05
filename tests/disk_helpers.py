"""A small disk for disk-full tests: a tmpfs mounted in the test's folder (needs root or CAP_SYS_ADMIN, as in
this project's containers), else None and the caller falls back to a file-size limit (RLIMIT_FSIZE)."""

from __future__ import annotations

import contextlib
import resource
import subprocess
from pathlib import Path


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """Mount a tmpfs of `size` (e.g. "300k") at `folder`; yields grow(new_size) to "free space", or None
    when mounting is not allowed here. Unmounted on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)], capture_output=True)
    if r.returncode:
        yield None
        return
    try:
        yield lambda new: subprocess.run(["mount", "-o", f"remount,size={new}", str(folder)], check=True, capture_output=True)
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def file_size_limit(size_bytes: int):
    """preexec_fn for subprocess: no file may grow past size_bytes (writes then fail with EFBIG)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size_bytes, size_bytes))
