"""One SQLite connection in WAL mode, shared by the budget ledger and the rate-limit quota.

Several worker processes open the same file at once. Switching a fresh database to WAL takes a lock that
SQLite's busy handler does not wait for, so the second opener can get "database is locked" at once
(seen with two `--workers` processes starting together); the switch is retried until `timeout_s`.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def connect_wal(path: str | Path, *, synchronous: str, timeout_s: float = 60.0) -> sqlite3.Connection:
    """Autocommit connection (transactions are explicit), WAL journal, busy timeout, the given `synchronous`."""
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn
