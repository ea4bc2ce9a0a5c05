"""A hard dollar budget for paid API calls, kept in SQLite in the output folder.

How to use it:

    from datakit.synth.ledger import Ledger, BudgetExhausted

    ledger = Ledger(out_dir, budget_usd=20.0)          # creates/opens <out_dir>/ledger.sqlite
    try:
        rid = ledger.reserve(worst_case_usd, label="seed-17")   # before the request
    except BudgetExhausted:
        ...stop launching work...
    try:
        response = call_the_api()
    except NotBilled:                                   # e.g. HTTP 429/5xx: nothing was charged
        ledger.release(rid)
    else:
        ledger.settle(rid, real_cost_usd, n_prompt_tokens=..., n_completion_tokens=...)

Most callers want `datakit.synth.llm.LLMCaller`, which does exactly this around every litellm call.

The invariant: settled spend + open reservations <= budget_usd, always. `reserve` checks and books
in one `BEGIN IMMEDIATE` transaction, so it holds across threads (one connection per thread) and
across processes sharing the folder. The budget belongs to the folder: spend persists across runs,
and a rerun with the same `--budget` can only spend what is left.

A reservation left open by a process that died (kill -9, power loss of the client) is settled at its
worst case the next time a Ledger opens the folder: the request may have been billed and we cannot
know, so we assume it was. Every error in this ledger is in the safe direction (counting too much).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from datakit.errors import is_disk_full
from datakit.synth.money import usd
from datakit.synth.sqlite_wal import connect_wal
from datakit.synth.store import DiskFull, release_disk_reserve

LEDGER_FILE = "ledger.sqlite"
_EPS_USD = 1e-12  # float slack so that an exact fit is allowed

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    label TEXT NOT NULL,
    state TEXT NOT NULL,              -- reserved | settled | released | orphaned
    reserved_usd REAL NOT NULL,       -- worst case booked before the call
    cost_usd REAL NOT NULL DEFAULT 0, -- what the call really cost (worst case for orphans)
    n_prompt_tokens INTEGER NOT NULL DEFAULT 0,
    n_completion_tokens INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS entries_open ON entries(state) WHERE state = 'reserved';
CREATE TABLE IF NOT EXISTS totals (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    committed_usd REAL NOT NULL,      -- settled + orphaned cost + open reservations
    spent_usd REAL NOT NULL           -- settled + orphaned cost
);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class BudgetExhausted(Exception):
    """The next reservation would take settled + reserved spend past the budget."""

    def __init__(self, needed_usd: float, remaining_usd: float, budget_usd: float):
        self.needed_usd = needed_usd
        self.remaining_usd = remaining_usd
        self.budget_usd = budget_usd
        super().__init__(f"budget reached: next call needs up to {usd(needed_usd)}, {usd(remaining_usd)} of {usd(budget_usd)} left")


@dataclass(frozen=True)
class LedgerTotals:
    budget_usd: float | None
    spent_usd: float  # settled and orphaned calls
    reserved_usd: float  # open reservations (calls in flight)
    n_calls_settled: int
    n_calls_released: int
    n_calls_orphaned: int
    n_prompt_tokens: int
    n_completion_tokens: int

    @property
    def committed_usd(self) -> float:
        return self.spent_usd + self.reserved_usd


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ledger:
    """The budget ledger of one output folder.

    folder: the output folder; the ledger lives in `<folder>/ledger.sqlite`.
    budget_usd: the most this folder may ever spend, in US dollars (None: read-only use, e.g. status;
        `reserve` then refuses).
    """

    def __init__(self, folder: str | Path, budget_usd: float | None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / LEDGER_FILE
        self.budget_usd = budget_usd
        self._local = threading.local()
        self._host = socket.gethostname()
        try:
            conn = self._conn()
            conn.executescript(_SCHEMA)
            if budget_usd is not None:
                with self._tx() as c:
                    c.execute("INSERT OR REPLACE INTO meta VALUES ('budget_usd', ?)", (repr(float(budget_usd)),))
            self.recover_orphans()
        except sqlite3.Error as e:  # no run holds a reserve yet: nothing paid is in hand
            if is_disk_full(e):
                raise DiskFull(self.folder) from None
            raise

    # -- connections and transactions ---------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_wal(self.path, synchronous="NORMAL")  # WAL: a commit survives kill -9 of the process (not a power cut)
            self._local.conn = conn
        return conn

    class _Tx:
        def __init__(self, conn: sqlite3.Connection):
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> "Ledger._Tx":
        return Ledger._Tx(self._conn())

    def _with_room(self, write):
        """Run a write transaction; on a full disk give back the run's disk reserve and retry once, so the
        spend of a call in hand is booked (the next record write then stops the run: store.DiskFull)."""
        try:
            return write()
        except sqlite3.Error as e:
            if not is_disk_full(e):
                raise
            conn = self._conn()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not release_disk_reserve(self.folder):
                raise DiskFull(self.folder, written=False) from None
            try:
                return write()
            except sqlite3.Error as e2:
                if is_disk_full(e2):
                    raise DiskFull(self.folder, written=False) from None
                raise

    # -- the three verbs ------------------------------------------------------------------------------
    def reserve(self, amount_usd: float, *, label: str = "") -> int:
        return self._with_room(lambda: self._reserve(amount_usd, label=label))

    def settle(self, reservation_id: int, cost_usd: float, *, n_prompt_tokens: int = 0, n_completion_tokens: int = 0, note: str = "") -> None:
        """Replace a reservation by what the call really cost (billed retries and rejects included)."""
        self._with_room(lambda: self._settle(reservation_id, cost_usd, n_prompt_tokens=n_prompt_tokens,
                                             n_completion_tokens=n_completion_tokens, note=note))

    def release(self, reservation_id: int, *, note: str = "") -> None:
        """Cancel a reservation whose call was not billed (refused before any work: 429, 5xx)."""
        self._with_room(lambda: self._release(reservation_id, note=note))

    def _reserve(self, amount_usd: float, *, label: str = "") -> int:
        """Book `amount_usd` (a call's worst case) against the budget; returns the reservation id.

        Raises BudgetExhausted when settled + reserved + amount_usd would exceed the budget.
        """
        if self.budget_usd is None:
            raise BudgetExhausted(amount_usd, 0.0, 0.0)
        if amount_usd < 0:
            raise ValueError("a reservation cannot be negative")
        with self._tx() as c:
            (committed,) = c.execute("SELECT committed_usd FROM totals").fetchone()
            if committed + amount_usd > self.budget_usd + _EPS_USD:
                raise BudgetExhausted(amount_usd, max(0.0, self.budget_usd - committed), self.budget_usd)
            cur = c.execute(
                "INSERT INTO entries (created, host, pid, label, state, reserved_usd) VALUES (?, ?, ?, ?, 'reserved', ?)",
                (time.time(), self._host, os.getpid(), label, amount_usd),
            )
            c.execute("UPDATE totals SET committed_usd = committed_usd + ?", (amount_usd,))
            return int(cur.lastrowid)

    def _settle(self, reservation_id: int, cost_usd: float, *, n_prompt_tokens: int = 0, n_completion_tokens: int = 0, note: str = "") -> None:
        with self._tx() as c:
            row = c.execute("SELECT state, reserved_usd FROM entries WHERE id = ?", (reservation_id,)).fetchone()
            if row is None or row[0] != "reserved":
                raise ValueError(f"reservation {reservation_id} is not open")
            c.execute(
                "UPDATE entries SET state='settled', cost_usd=?, n_prompt_tokens=?, n_completion_tokens=?, note=? WHERE id=?",
                (cost_usd, n_prompt_tokens, n_completion_tokens, note, reservation_id),
            )
            c.execute(
                "UPDATE totals SET committed_usd = committed_usd - ? + ?, spent_usd = spent_usd + ?",
                (row[1], cost_usd, cost_usd),
            )

    def _release(self, reservation_id: int, *, note: str = "") -> None:
        with self._tx() as c:
            row = c.execute("SELECT state, reserved_usd FROM entries WHERE id = ?", (reservation_id,)).fetchone()
            if row is None or row[0] != "reserved":
                raise ValueError(f"reservation {reservation_id} is not open")
            c.execute("UPDATE entries SET state='released', note=? WHERE id=?", (note, reservation_id))
            c.execute("UPDATE totals SET committed_usd = committed_usd - ?", (row[1],))

    # -- recovery and reporting -----------------------------------------------------------------------
    def recover_orphans(self) -> float:
        """Settle at worst case the open reservations of dead processes on this host; returns the dollars charged."""
        charged = 0.0
        with self._tx() as c:
            rows = c.execute("SELECT id, pid, reserved_usd FROM entries WHERE state='reserved' AND host=?", (self._host,)).fetchall()
            for rid, pid, reserved in rows:
                if pid == os.getpid() or _pid_alive(pid):
                    continue
                c.execute(
                    "UPDATE entries SET state='orphaned', cost_usd=reserved_usd, note='process died in flight; charged at worst case' WHERE id=?",
                    (rid,),
                )
                c.execute("UPDATE totals SET spent_usd = spent_usd + ?", (reserved,))
                charged += reserved
        return charged

    def state(self, reservation_id: int) -> str | None:
        """reserved | settled | released | orphaned, or None for an unknown id."""
        row = self._conn().execute("SELECT state FROM entries WHERE id = ?", (reservation_id,)).fetchone()
        return row[0] if row else None

    def totals(self) -> LedgerTotals:
        c = self._conn()
        committed, spent = c.execute("SELECT committed_usd, spent_usd FROM totals").fetchone()
        counts = dict(c.execute("SELECT state, count(*) FROM entries GROUP BY state").fetchall())
        n_in, n_out = c.execute(
            "SELECT coalesce(sum(n_prompt_tokens), 0), coalesce(sum(n_completion_tokens), 0) FROM entries"
        ).fetchone()
        row = c.execute("SELECT value FROM meta WHERE key='budget_usd'").fetchone()
        budget = self.budget_usd if self.budget_usd is not None else (float(row[0]) if row else None)
        return LedgerTotals(
            budget_usd=budget,
            spent_usd=spent,
            reserved_usd=max(0.0, committed - spent),
            n_calls_settled=counts.get("settled", 0),
            n_calls_released=counts.get("released", 0),
            n_calls_orphaned=counts.get("orphaned", 0),
            n_prompt_tokens=int(n_in),
            n_completion_tokens=int(n_out),
        )

    def remaining_usd(self) -> float:
        if self.budget_usd is None:
            return 0.0
        (committed,) = self._conn().execute("SELECT committed_usd FROM totals").fetchone()
        return max(0.0, self.budget_usd - committed)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
