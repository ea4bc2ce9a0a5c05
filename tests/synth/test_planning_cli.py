"""The real `datakit synth` CLI in a subprocess: kill -9 and resume, user errors, dry run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from datakit.synth.ledger import Ledger

PRICE_IN, PRICE_OUT = 2.5, 10.0  # litellm's price of azure/gpt-4o, $ per 1M tokens


def datakit_cmd(*args):
    return [sys.executable, "-m", "datakit.cli.main", "synth", *args]


def cli_env(server, key):
    env = dict(os.environ, AZURE_API_KEY=key, AZURE_API_BASE=server.url, AZURE_API_VERSION="2024-10-21")
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


def n_lines(folder):
    return sum(p.read_bytes().count(b"\n") for p in folder.glob("*.jsonl")) if folder.exists() else 0


@pytest.mark.slow
def test_sigkill_then_rerun_has_no_duplicate_or_lost_records(server, fast_spec, fake_key, tmp_path):
    server.latency_s = 0.2
    out = tmp_path / "out"
    args = datakit_cmd("planning", "--provider", "azure", "--budget", "2", "--count", "40", "--concurrency", "4",
                       "--out", str(out), "--spec", str(fast_spec()), "--quiet")
    env = cli_env(server, fake_key)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while n_lines(out / "records") < 10 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-run, with requests in flight
    _, err1 = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    n_before = n_lines(out / "records")
    assert 10 <= n_before < 40
    killed = Ledger(out, None).totals()  # opening the folder charges the killed run's calls in flight
    assert killed.n_calls_orphaned >= 1 and killed.reserved_usd == pytest.approx(0.0)

    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "count reached" in done.stdout
    ids = [json.loads(line)["id"] for p in sorted((out / "records").glob("*.jsonl")) for line in p.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 40  # no duplicates
    assert sorted(ids) == [f"planning-s0-{i:08d}" for i in range(40)]  # nothing lost
    t = Ledger(out, None).totals()
    assert t.reserved_usd == pytest.approx(0.0)
    assert t.spent_usd >= server.billed_cost_usd(PRICE_IN, PRICE_OUT) - 1e-12  # in-flight calls of the killed run charged
    assert t.spent_usd <= 2.0
    for text in (err1.decode(), done.stdout, done.stderr):
        assert fake_key not in text



def test_cli_user_errors_exit_2_without_traceback(cli, server, fast_spec, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AZURE_API_KEY", "")
    monkeypatch.setenv("AZURE_API_BASE", server.url)
    code, out, err = cli.datakit("synth", "planning", "--provider", "azure", "--budget", "1", "--out", str(tmp_path / "o"), "--spec", str(fast_spec()))
    assert code == 2
    assert err.startswith("error: ") and "AZURE_API_KEY is not set" in err and "(fix: export AZURE_API_KEY" in err
    assert "Traceback" not in err
    assert server.requests == 0
    code, out, err = cli.datakit("synth", "status", str(tmp_path / "missing"))
    assert code == 2 and "no such output folder" in err


def test_cli_dry_run(cli, real_spec, monkeypatch, capsys):
    monkeypatch.delenv("AZURE_API_KEY", raising=False)  # a dry run needs no credentials
    code, out, err = cli.datakit("synth", "planning", "--provider", "azure", "--budget", "100", "--dry-run", "--spec", str(real_spec))
    assert code == 0, err
    assert "azure *" in out and "3,333,333 tokens = 3.33M" in out


def test_cli_procedural_provider_delegates_without_budget(cli, tmp_path, monkeypatch, capsys):
    out = tmp_path / "proc"
    code, stdout, err = cli.datakit("synth", "planning", "--provider", "procedural", "--count", "5", "--seed", "3", "--out", str(out))
    assert code == 0, err
    assert stdout.startswith("procedural: ")
    records = [json.loads(line) for p in (out / "records").glob("*.jsonl") for line in p.read_text().splitlines()]
    assert len(records) == 5 and all(r["problem"] and r["thinking"] and r["answer"] for r in records)
    assert not (out / "ledger.sqlite").exists()  # no money involved
