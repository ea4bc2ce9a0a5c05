"""`--workers N`: calls made by N processes sharing the folder's ledger and quota; records written once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from datakit.synth.ledger import Ledger
from datakit.synth.planning import run_planning

PRICE_IN, PRICE_OUT = 2.5, 10.0  # litellm's price of azure/gpt-4o, $ per 1M tokens


def _records(out):
    return [json.loads(x) for p in sorted((out / "records").glob("*.jsonl")) for x in p.read_text().splitlines()]


def test_two_worker_processes_share_the_budget_and_each_record_is_written_once(azure_env, fast_spec, tmp_path):
    server = azure_env
    server.faults = {"429": 0.05, "500": 0.05, "malformed": 0.05}
    out = tmp_path / "out"
    budget = 0.12  # worst case per call ~ $0.0043, real ~ $0.0016: the budget ends the run (~70 calls)
    s = run_planning(out, provider="azure", budget_usd=budget, count=10_000, spec_path=fast_spec(), concurrency=16, progress=False, workers=2)
    assert s["stopped"] == "budget reached" and s["accepted"] > 30
    ids = [r["id"] for r in _records(out)]
    assert len(ids) == len(set(ids)) == s["accepted"]
    ledger = Ledger(out, None)
    pids = {row[0] for row in ledger._conn().execute("SELECT DISTINCT pid FROM entries")}
    assert len(pids) == 2 and os.getpid() not in pids  # the calls were made by the two workers
    t = ledger.totals()
    billed_usd = server.billed_cost_usd(PRICE_IN, PRICE_OUT)
    assert t.reserved_usd == pytest.approx(0.0)
    assert billed_usd - 1e-12 <= t.spent_usd <= budget  # never less than billed, never more than the budget
    assert t.spent_usd == pytest.approx(billed_usd)  # nothing was in flight at the end: exact


@pytest.mark.slow
def test_a_refused_key_with_workers_sends_one_request(server, fast_spec, tmp_path, monkeypatch):
    from datakit.synth.llm import ProviderRefused

    server.api_key = "sk-right"
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_BASE", server.openai_url)
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-wrong")
    with pytest.raises(ProviderRefused, match="HTTP 401"):
        run_planning(tmp_path / "o", provider="openai-compatible", budget_usd=1.0, count=50, spec_path=fast_spec(), concurrency=16,
                     progress=False, workers=2)
    assert server.requests == 1


@pytest.mark.slow
def test_workers_exit_when_the_parent_is_killed(server, fast_spec, fake_key, tmp_path):
    server.latency_s = 0.1
    out = tmp_path / "out"
    env = dict(os.environ, AZURE_API_KEY=fake_key, AZURE_API_BASE=server.url, AZURE_API_VERSION="2024-10-21", LITELLM_LOCAL_MODEL_COST_MAP="True")
    args = [sys.executable, "-m", "datakit.cli.main", "synth", "planning", "--provider", "azure", "--budget", "2", "--count", "400",
            "--concurrency", "8", "--workers", "2", "--out", str(out), "--spec", str(fast_spec()), "--quiet"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and (not (out / "records").exists() or len(_records(out)) < 8):
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children()
    assert len(children) == 2
    proc.send_signal(signal.SIGKILL)  # with calls in flight in both workers
    proc.communicate(timeout=30)
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive  # no worker outlives its run
    n = len(_records(out))
    assert 8 <= n < 400
    t = Ledger(out, None).totals()  # the workers charged their cancelled calls at worst case before exiting
    assert t.reserved_usd == pytest.approx(0.0)
    assert t.spent_usd >= server.billed_cost_usd(PRICE_IN, PRICE_OUT) - 1e-12
