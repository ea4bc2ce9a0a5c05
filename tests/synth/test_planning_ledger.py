"""The budget ledger: reserve/settle/release arithmetic, the cap under threads and processes, crash recovery."""

from __future__ import annotations

import multiprocessing
import os
import random
import subprocess
import sys
import threading

import pytest

from datakit.synth.ledger import BudgetExhausted, Ledger


def test_reserve_settle_release_keep_the_cap(tmp_path):
    ledger = Ledger(tmp_path, budget_usd=1.0)
    a = ledger.reserve(0.6)
    with pytest.raises(BudgetExhausted):
        ledger.reserve(0.5)  # 0.6 + 0.5 > 1.0
    ledger.settle(a, 0.2, n_prompt_tokens=10, n_completion_tokens=20)
    b = ledger.reserve(0.8)  # 0.2 spent + 0.8 = exactly the budget
    ledger.release(b)
    t = ledger.totals()
    assert t.spent_usd == pytest.approx(0.2)
    assert t.reserved_usd == pytest.approx(0.0)
    assert (t.n_calls_settled, t.n_calls_released) == (1, 1)
    assert (t.n_prompt_tokens, t.n_completion_tokens) == (10, 20)
    with pytest.raises(ValueError):
        ledger.settle(a, 0.1)  # a reservation is settled once


def test_spend_persists_for_the_folder(tmp_path):
    ledger = Ledger(tmp_path, budget_usd=1.0)
    ledger.settle(ledger.reserve(0.9), 0.9)
    ledger.close()
    again = Ledger(tmp_path, budget_usd=1.0)  # a rerun with the same budget can only spend what is left
    assert again.remaining_usd() == pytest.approx(0.1)
    with pytest.raises(BudgetExhausted):
        again.reserve(0.2)


def _hammer(folder, budget_usd, seed, n):
    """Reserve random worst cases and settle at a random share of them, from 4 threads."""
    ledger = Ledger(folder, budget_usd)
    rng = random.Random(seed)
    amounts = [(rng.uniform(0.001, 0.05), rng.random()) for _ in range(n)]

    def work(part):
        for amount, share in part:
            try:
                rid = ledger.reserve(amount)
            except BudgetExhausted:
                continue
            if share < 0.2:
                ledger.release(rid)
            else:
                ledger.settle(rid, amount * share)

    threads = [threading.Thread(target=work, args=(amounts[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_cap_holds_across_processes_and_threads(tmp_path):
    budget = 2.0
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(tmp_path, budget, seed, 150)) for seed in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    t = Ledger(tmp_path, budget).totals()
    assert t.reserved_usd == pytest.approx(0.0, abs=1e-9)
    assert t.spent_usd <= budget + 1e-9
    assert t.spent_usd > 0.9 * budget  # the budget was really contended
    # the running total agrees with the rows it summarizes
    import sqlite3

    (rows_total,) = sqlite3.connect(tmp_path / "ledger.sqlite").execute("SELECT sum(cost_usd) FROM entries WHERE state='settled'").fetchone()
    assert rows_total == pytest.approx(t.spent_usd)


def test_reservation_of_a_killed_process_is_charged_at_worst_case(tmp_path):
    code = (
        "import os, sys; from datakit.synth.ledger import Ledger; "
        f"l = Ledger({str(tmp_path)!r}, 5.0); l.reserve(0.75, label='in flight'); os._exit(9)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    ledger = Ledger(tmp_path, 5.0)  # opening the folder recovers the orphan
    t = ledger.totals()
    assert t.n_calls_orphaned == 1
    assert t.spent_usd == pytest.approx(0.75)
    assert t.reserved_usd == pytest.approx(0.0)
    assert ledger.remaining_usd() == pytest.approx(4.25)
    assert os.getpid()  # our own open reservations are never treated as orphans
    mine = ledger.reserve(1.0)
    assert Ledger(tmp_path, 5.0).totals().reserved_usd == pytest.approx(1.0)
    ledger.release(mine)
