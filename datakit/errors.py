"""One exception type for user mistakes.

The CLI catches `UserError` once and prints `error: <file>: <field>: <what> (fix: <fix>)` with exit
code 2 (1 for `IntegrityError`: damaged files of a built mixture) and no traceback. Anything else is our
bug and keeps its traceback.
"""

from __future__ import annotations

import errno

# "no space left", "disk quota exceeded", "file too large" (a file-size limit, `ulimit -f`)
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
DISK_FULL_TEXTS = ("No space left on device", "database or disk is full", "File too large", "Disk quota exceeded")


def is_disk_full(exc: BaseException) -> bool:
    """Whether an exception means the disk (or a quota / file-size limit) ran out: OSError by errno, and
    DuckDB's / SQLite's own exceptions by their message."""
    return disk_full_reason(exc) is not None


def disk_full_reason(exc: BaseException) -> str | None:
    """"No space left on device" / "File too large" / ... when `exc` means the disk ran out, else None."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return exc.strerror or "No space left on device"
    return next((t for t in DISK_FULL_TEXTS if t in str(exc)), None)


class UserError(Exception):
    """A problem the user can fix: bad spec, missing file, wrong option.

    details: further lines printed under the one-line error (e.g. the list of damaged files).
    """

    exit_code = 2

    def __init__(self, what: str, *, file: str | None = None, field: str | None = None, fix: str | None = None,
                 details: list[str] | None = None):
        self.what = what
        self.file = str(file) if file is not None else None
        self.field = field
        self.fix = fix
        self.details = list(details or [])
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        msg = ": ".join([*parts, self.what])
        if self.fix:
            msg += f" (fix: {self.fix})"
        return msg

    def render(self) -> str:
        """What the CLI prints: `error: ...` and the detail lines, indented."""
        return "\n".join([f"error: {self}", *(f"  {d}" for d in self.details)])


class IntegrityError(UserError):
    """Files of a built mixture do not match its manifest (size, sha256, structure or accounting): exit code 1."""

    exit_code = 1
