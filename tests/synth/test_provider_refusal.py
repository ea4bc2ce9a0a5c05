"""A wrong key (HTTP 401/403) stops the run at the first answer: one line, no traceback, nothing more sent.

Issue 16, item 7: at concurrency 32 a bad key used to send up to 32 requests and print "Task exception was
never retrieved" tracebacks. The first request is now sent alone (the provider is probed before the rest
fan out); a refusal closes the caller so that no other worker sends anything.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from datakit.synth.ledger import Ledger
from datakit.synth.llm import LLMCaller, ProviderRefused
from datakit.synth.prices import resolve_price


def _cli(server, tmp_path, spec, *extra):
    env = dict(os.environ, OPENAI_COMPATIBLE_API_BASE=server.openai_url, OPENAI_COMPATIBLE_API_KEY="sk-wrong-key-1234",
               LITELLM_LOCAL_MODEL_COST_MAP="True")
    args = [sys.executable, "-m", "datakit.cli.main", "synth", "planning", "--provider", "openai-compatible", "--budget", "5",
            "--count", "200", "--concurrency", "32", "--out", str(tmp_path / "out"), "--spec", str(spec), "--quiet", *extra]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


def test_a_refused_key_stops_every_worker_after_one_request(server, fast_spec, tmp_path):
    server.latency_s = 0.05  # answers take a while, so 32 workers would all have sent before the first 401
    server.api_key = "sk-the-right-key"
    done = _cli(server, tmp_path, fast_spec())
    assert done.returncode == 2, done.stderr
    err_lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(err_lines) == 1, done.stderr
    assert err_lines[0].startswith("error: ") and "HTTP 401" in err_lines[0] and "(fix: " in err_lines[0]
    assert "Traceback" not in done.stderr and "never retrieved" not in done.stderr
    assert "sk-wrong-key-1234" not in done.stderr + done.stdout
    assert server.requests == 1  # nothing sent after the first refusal
    assert Ledger(tmp_path / "out", None).totals().spent_usd == 0.0


def test_a_403_stops_the_run_after_one_request(server, fast_spec, tmp_path, monkeypatch):
    from datakit.synth.planning import run_planning

    server.latency_s = 0.05
    server.faults = {"403": 1.0}
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_BASE", server.openai_url)
    with pytest.raises(ProviderRefused, match="HTTP 403") as e:
        run_planning(tmp_path / "out", provider="openai-compatible", budget_usd=5.0, count=200, spec_path=fast_spec(), concurrency=32,
                     progress=False)
    assert "\n" not in str(e.value) and "permissions" in str(e.value)
    assert server.requests == 1


def test_threaded_callers_stop_after_the_first_refusal(server, tmp_path):
    """`datakit synth dpo --provider <llm>` calls from a thread pool: the same one request, then nothing."""
    from concurrent.futures import ThreadPoolExecutor

    server.api_key = "sk-the-right-key"
    server.latency_s = 0.05
    caller = LLMCaller("openai/local", resolve_price("openai/local", in_usd_per_mtok=0.1, out_usd_per_mtok=0.3), Ledger(tmp_path, 1.0),
                       api_key="sk-wrong", api_base=server.openai_url, timeout_s=5.0)
    messages = [{"role": "user", "content": "plan"}]
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(caller.call, messages, max_tokens=50) for _ in range(16)]
        errors = [f.exception() for f in futures]
    assert all(isinstance(e, ProviderRefused) for e in errors)
    assert server.requests == 1
