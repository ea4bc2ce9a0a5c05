"""connect_wal retries the switch to WAL when SQLite answers "database is locked" at once (two worker
processes opening a fresh ledger or quota file together: seen once in the full suite), and gives up
after its timeout or on any other error."""

from __future__ import annotations

import sqlite3

import pytest

from datakit.synth import sqlite_wal


class _Flaky:
    """A real connection whose first `n_locked` journal-mode switches fail as SQLite's would."""

    def __init__(self, conn: sqlite3.Connection, n_locked: int, message: str = "database is locked"):
        self.conn, self.left, self.message, self.tries = conn, n_locked, message, 0

    def execute(self, sql: str, *args):
        if sql == "PRAGMA journal_mode=WAL":
            self.tries += 1
            if self.left:
                self.left -= 1
                raise sqlite3.OperationalError(self.message)
        return self.conn.execute(sql, *args)


def _patch(monkeypatch, **kw) -> list[_Flaky]:
    made = []
    real = sqlite3.connect

    def connect(*a, **k):
        made.append(_Flaky(real(*a, **k), **kw))
        return made[-1]

    monkeypatch.setattr(sqlite_wal.sqlite3, "connect", connect)
    return made


def test_a_locked_switch_is_retried_until_the_file_is_in_wal(tmp_path, monkeypatch):
    made = _patch(monkeypatch, n_locked=3)
    conn = sqlite_wal.connect_wal(tmp_path / "l.sqlite", synchronous="NORMAL", timeout_s=5)
    assert made[0].tries == 4 and conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_it_gives_up_after_the_timeout_and_on_other_errors(tmp_path, monkeypatch):
    _patch(monkeypatch, n_locked=10**6)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        sqlite_wal.connect_wal(tmp_path / "l.sqlite", synchronous="OFF", timeout_s=0.2)
    made = _patch(monkeypatch, n_locked=1, message="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        sqlite_wal.connect_wal(tmp_path / "m.sqlite", synchronous="OFF", timeout_s=5)
    assert made[0].tries == 1
