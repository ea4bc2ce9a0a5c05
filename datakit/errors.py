"""One exception type for user mistakes.

The CLI catches `UserError` once and prints `error: <file>: <field>: <what> (fix: <fix>)` with exit
code 2 and no traceback. Anything else is our bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: bad spec, missing file, wrong option."""

    def __init__(self, what: str, *, file: str | None = None, field: str | None = None, fix: str | None = None):
        self.what = what
        self.file = str(file) if file is not None else None
        self.field = field
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        msg = ": ".join([*parts, self.what])
        if self.fix:
            msg += f" (fix: {self.fix})"
        return msg
