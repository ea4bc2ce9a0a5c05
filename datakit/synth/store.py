"""The output folder of a synth run (Contract 3 records under a budget).

    <out>/records/<run_id>.jsonl   accepted records, one JSON object per line, unique "id"
    <out>/rejects/<run_id>.jsonl   rejected outputs with "reason" (never part of the dataset)
    <out>/ledger.sqlite            the budget ledger (datakit.synth.ledger)
    <out>/batches/<batch_id>.json  Batch API jobs of --batch runs (submitted | collected)
    <out>/.lock                    held by the one run writing the folder

Lines are appended with a single os.write on an O_APPEND descriptor, so a kill -9 leaves at most a partial
last line; `OutputFolder.open_run` cuts such a tail before appending again, and readers skip it.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from datakit.errors import UserError


def read_jsonl(path: Path) -> Iterator[dict]:
    """Complete JSON lines of `path` (a partial last line from a killed writer is skipped)."""
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def _cut_partial_tail(path: Path) -> None:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


class JsonlAppender:
    """Append one JSON object per line; each line is one os.write, so it is on disk or absent."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, obj: dict) -> None:
        os.write(self._fd, (json.dumps(obj, ensure_ascii=False) + "\n").encode())

    def close(self) -> None:
        """Close; a run file that got no line is removed (a rerun with nothing to do leaves no empty file)."""
        os.close(self._fd)
        if self.path.exists() and self.path.stat().st_size == 0:
            self.path.unlink()


class OutputFolder:
    """One synth output folder. out: the folder (created on first run)."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.records_dir = self.out / "records"
        self.rejects_dir = self.out / "rejects"
        self._lock_fd: int | None = None

    def record_files(self) -> list[Path]:
        return sorted(self.records_dir.glob("*.jsonl"))

    def reject_files(self) -> list[Path]:
        return sorted(self.rejects_dir.glob("*.jsonl"))

    def records(self) -> Iterator[dict]:
        for path in self.record_files():
            yield from read_jsonl(path)

    def rejects(self) -> Iterator[dict]:
        for path in self.reject_files():
            yield from read_jsonl(path)

    def lock(self) -> None:
        """Become the only writer of this folder; UserError if another run holds it."""
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(
                "another run is writing this folder",
                file=str(self.out),
                fix="wait for it to finish, or use another --out",
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def open_run(self) -> tuple[str, JsonlAppender, JsonlAppender]:
        """Start a run (caller holds the lock): cut partial tails, return (run_id, records, rejects) appenders."""
        for path in [*self.record_files(), *self.reject_files()]:
            _cut_partial_tail(path)
        while True:  # unique even for two runs of one process within a second
            run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}-{secrets.token_hex(3)}"
            if not (self.records_dir / f"{run_id}.jsonl").exists():
                break
        return run_id, JsonlAppender(self.records_dir / f"{run_id}.jsonl"), JsonlAppender(self.rejects_dir / f"{run_id}.jsonl")
