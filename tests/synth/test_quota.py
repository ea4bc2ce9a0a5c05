"""Provider quotas (RPM/TPM): pacing shared across processes, 429 Retry-After and x-ratelimit-* headers,
and a planning run against the real local server enforcing a quota through the real litellm client."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time

import pytest

from datakit.errors import UserError
from datakit.synth.planning import run_planning
from datakit.synth.planning_spec import load_planning_spec
from datakit.synth.quota import Quota, parse_duration_s, prompt_tokens_estimate


def test_durations_in_rate_limit_headers():
    assert parse_duration_s("6m0s") == 360.0
    assert parse_duration_s("1s") == 1.0 and parse_duration_s("20ms") == pytest.approx(0.02)
    assert parse_duration_s("1.5") == 1.5 and parse_duration_s("1h2m") == 3720.0
    assert parse_duration_s("soon") is None and parse_duration_s(None) is None


def test_requests_are_paced_at_the_rpm_and_tokens_at_the_tpm(tmp_path):
    q = Quota(tmp_path, "azure/x", rpm=600)  # one request per 0.1 s
    waits = [q.schedule(10) for _ in range(5)]
    assert waits[0] == pytest.approx(0.0, abs=0.02)
    assert [round(b - a, 2) for a, b in zip(waits, waits[1:])] == [0.1] * 4
    t = Quota(tmp_path, "openai/y", tpm=60_000)  # 1,000 tokens per second
    assert t.schedule(2000) == pytest.approx(0.0, abs=0.02)
    assert t.schedule(500) == pytest.approx(2.0, abs=0.05)  # waits for the first request's 2,000 tokens


def test_usage_providers_get_unused_tokens_back_and_max_tokens_providers_do_not(tmp_path):
    usage = Quota(tmp_path, "anthropic/m", tpm=60_000, tpm_counts="usage")
    usage.schedule(1000)
    usage.correct(1000, 100)  # the answer used 100 of the 1,000 booked
    assert usage.schedule(10) == pytest.approx(0.1, abs=0.03)
    counted = Quota(tmp_path, "azure/m", tpm=60_000)  # Azure counts prompt + max_tokens at arrival
    assert counted.tpm_counts == "max_tokens"
    counted.schedule(1000)
    counted.correct(1000, 100)
    assert counted.schedule(10) == pytest.approx(1.0, abs=0.03)
    assert prompt_tokens_estimate([{"content": "x" * 400}]) == 100 + 8


def test_429_and_exhausted_headers_pause_everyone_and_announced_limits_pace(tmp_path):
    a, b = Quota(tmp_path, "azure/x"), Quota(tmp_path, "azure/x")  # two workers of one run
    assert a.schedule(10) <= 0
    a.pause(0.5)  # a 429 with Retry-After: 0.5 seen by worker a
    assert b.schedule(10) == pytest.approx(0.5, abs=0.05)
    c = Quota(tmp_path, "openai/y")
    c.observe({"llm_provider-x-ratelimit-remaining-requests": "0", "llm_provider-x-ratelimit-reset-requests": "1.5s"}, 100)
    assert c.schedule(10) == pytest.approx(1.5, abs=0.05)
    d = Quota(tmp_path, "openai/z")  # no rpm configured: the provider's announced limit is the pace
    d.observe({"x-ratelimit-limit-requests": "1200", "x-ratelimit-remaining-requests": "900"}, 100)
    assert d.limits() == (1200.0, None)
    waits = [d.schedule(10) for _ in range(3)]
    assert waits[2] - waits[1] == pytest.approx(0.05, abs=0.01)


_WORKER = """
import sys, time
from datakit.synth.quota import Quota
q = Quota(sys.argv[1], "azure/shared", rpm=1200)
for _ in range(15):
    time.sleep(max(0.0, q.schedule(10)))
    print(time.time(), flush=True)
"""


def test_pacing_is_shared_by_worker_processes(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    starts = sorted(float(x) for p in procs for x in p.communicate(timeout=60)[0].split())
    assert all(p.returncode == 0 for p in procs)
    assert len(starts) == 30
    # 1,200 per minute = one per 50 ms, across both processes: 30 starts span >= 29 intervals
    assert starts[-1] - starts[0] >= 29 * 0.05 * 0.95
    assert sum(1 for a, b in zip(starts, starts[1:]) if b - a < 0.025) <= 2  # scheduler jitter only


def _spec_with_quota(fast_spec, **quota) -> str:
    path = fast_spec(concurrency=16)
    text = path.read_text()
    keys = "".join(f"{k} = {json.dumps(v)}\n" for k, v in quota.items())
    path.write_text(text.replace("[provider.azure]\n", "[provider.azure]\n" + keys, 1))
    return path


async def _burst(server, n: int) -> None:
    import litellm

    kw = dict(model="azure/x", api_base=server.url, api_version="2024-10-21", api_key="k", max_tokens=100, num_retries=0, max_retries=0)

    async def one(i):
        try:
            await litellm.acompletion(messages=[{"role": "user", "content": f"burst {i}"}], **kw)
        except Exception:  # noqa: BLE001 - the 429s are what we count
            pass

    await asyncio.gather(*[one(i) for i in range(n)])


@pytest.mark.parametrize("configured", [True, False])
def test_a_run_under_the_servers_quota_gets_no_429(azure_env, fast_spec, tmp_path, configured):
    server = azure_env
    server.latency_s = 0.02
    server.rpm, server.window_s = 1200, 1.0  # 20 requests per second, at most 20 at once
    server._buckets["requests"] = 20.0
    asyncio.run(_burst(server, 40))  # the quota is real: a burst at concurrency 40 gets 429s
    assert server.status_counts.get(429, 0) >= 10
    time.sleep(1.0)
    server.status_counts.clear()
    # configured: rpm in the profile; not configured: the x-ratelimit-limit-requests of the first answer
    spec = _spec_with_quota(fast_spec, rpm=1200) if configured else fast_spec(concurrency=16)
    t0 = time.time()
    s = run_planning(tmp_path / "out", provider="azure", budget_usd=5.0, count=60, spec_path=spec, progress=False)
    elapsed = time.time() - t0
    assert s["accepted"] + sum(s["rejected"].values()) == 60 or s["stopped"] == "count reached"
    assert server.status_counts.get(429, 0) <= 1, server.status_counts
    n = sum(server.status_counts.values())
    assert elapsed >= (n - 20) / 20 * 0.9  # paced: beyond the bucket's 20, at most 20 per second


def test_quota_keys_are_validated(fast_spec):
    with pytest.raises(UserError, match=r"provider\.azure\.rpm"):
        load_planning_spec(_spec_with_quota(fast_spec, rpm=-5))
    with pytest.raises(UserError, match=r"provider\.azure\.tpm_counts"):
        load_planning_spec(_spec_with_quota(fast_spec, tpm_counts="words"))
    spec = load_planning_spec(_spec_with_quota(fast_spec, rpm=600, tpm=200_000))
    assert re.search(r"rpm=600", repr(spec.profile("azure").quota(fast_spec().parent / "q")))
