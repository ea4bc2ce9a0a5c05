"""The output folder of a synth run (Contract 3 records under a budget).

    <out>/records/<run_id>.jsonl   accepted records, one JSON object per line, unique "id"
    <out>/rejects/<run_id>.jsonl   rejected outputs with "reason" (never part of the dataset)
    <out>/ledger.sqlite            the budget ledger (datakit.synth.ledger)
    <out>/batches/<batch_id>.json  Batch API jobs of --batch runs (submitted | collected)
    <out>/.lock                    held by the one run writing the folder
    <out>/.disk-reserve            space held back while a run writes (see below)

Lines are appended with a single os.write on an O_APPEND descriptor, so a kill -9 leaves at most a partial
last line; `OutputFolder.open_run` cuts such a tail before appending again, and readers skip it.

A full disk must not lose an answer that was paid for: a run holds RESERVE_BYTES in `.disk-reserve`. When
a write (a record, a reject, the ledger) finds the disk full, the partial line is cut, the reserve is
given back and the write retried (into a fresh file of the run: that also gets past a file-size limit);
then the run stops with a `DiskFull` error. A rerun resumes (the reserve is taken again first).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from datakit.errors import UserError, is_disk_full

RESERVE_NAME = ".disk-reserve"
RESERVE_BYTES = 4 << 20  # 4 MiB: hundreds of records and ledger pages


class DiskFull(UserError):
    """The disk filled while a synth run wrote its output; what was paid for is written, the run stops."""

    def __init__(self, folder: Path, written: bool = True):
        self.written = written
        super().__init__(
            "the disk is full: the run stopped" + ("; every answer paid for so far is written" if written else
                                                   "; the answer in hand could not be written (its cost is in the ledger)"),
            file=str(folder), fix="free space and rerun the same command: it resumes where it stopped")


def hold_disk_reserve(folder: Path) -> None:
    """Set RESERVE_BYTES aside in `<folder>/.disk-reserve` (a run's first write: no call is made without it)."""
    path = Path(folder) / RESERVE_NAME
    if path.exists() and path.stat().st_size >= RESERVE_BYTES:
        return
    try:
        with open(path, "wb") as f:
            f.write(b"\0" * RESERVE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        path.unlink(missing_ok=True)
        if is_disk_full(e):
            raise UserError(f"the disk is full: no room for the {RESERVE_BYTES >> 20} MiB a run holds back before paying for calls",
                            file=str(folder), fix="free space and rerun the same command") from None
        raise


def release_disk_reserve(folder: Path) -> bool:
    """Give the reserve back to the disk; True if there was one to give."""
    path = Path(folder) / RESERVE_NAME
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


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
    """Append one JSON object per line; each line is on disk whole or absent.

    reserve_folder: the folder whose `.disk-reserve` this run holds; a full disk then gives it back, writes
    the line into a fresh file and raises DiskFull (without one, DiskFull at once, the partial line cut)."""

    def __init__(self, path: Path, reserve_folder: Path | None = None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.reserve_folder = reserve_folder
        self.paths = [path]
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _write(self, data: bytes) -> None:
        start = os.fstat(self._fd).st_size
        try:
            done = 0
            while done < len(data):  # a full disk can take part of a write before it refuses
                done += os.write(self._fd, data[done:])
        except OSError:
            os.ftruncate(self._fd, start)  # never leave a partial line
            raise

    def append(self, obj: dict) -> None:
        data = (json.dumps(obj, ensure_ascii=False) + "\n").encode()
        try:
            self._write(data)
        except OSError as e:
            if not is_disk_full(e):
                raise
            if self.reserve_folder is None or not release_disk_reserve(self.reserve_folder):
                raise DiskFull(self.reserve_folder or self.path.parent.parent, written=False) from None
            self._reopen()
            try:
                self._write(data)
            except OSError as e2:
                if is_disk_full(e2):
                    raise DiskFull(self.reserve_folder, written=False) from None
                raise
            raise DiskFull(self.reserve_folder) from None
        if self.reserve_folder is not None and not (Path(self.reserve_folder) / RESERVE_NAME).exists():
            raise DiskFull(self.reserve_folder)  # another writer (the ledger) used the reserve: stop now

    def _reopen(self) -> None:
        """Continue in a fresh file of the same run (`<run_id>.<k>.jsonl`): past a per-file size limit too."""
        os.close(self._fd)
        self.path = self.paths[0].with_name(f"{self.paths[0].stem}.{len(self.paths)}.jsonl")
        self.paths.append(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def close(self) -> None:
        """Close; a run file that got no line is removed (a rerun with nothing to do leaves no empty file)."""
        os.close(self._fd)
        for path in self.paths:
            if path.exists() and path.stat().st_size == 0:
                path.unlink()


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
            release_disk_reserve(self.out)
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
        hold_disk_reserve(self.out)
        return (run_id, JsonlAppender(self.records_dir / f"{run_id}.jsonl", self.out),
                JsonlAppender(self.rejects_dir / f"{run_id}.jsonl", self.out))
