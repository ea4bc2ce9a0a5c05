"""The budgeted litellm call against a real local server: retries, Retry-After, refusals, breaker, prices."""

from __future__ import annotations

import asyncio
import time

import pytest

from datakit.errors import UserError
from datakit.synth.ledger import BudgetExhausted, Ledger
from datakit.synth.llm import CallFailed, CircuitBreaker, CircuitOpen, LLMCaller, ProviderRefused, prompt_tokens_upper_bound
from datakit.synth.prices import resolve_price

FAKE_KEY = "sk-test-DO-NOT-LEAK-7f3a9c"  # as in conftest.py
PRICE_IN, PRICE_OUT = 2.5, 10.0  # litellm's price of azure/gpt-4o, $ per 1M tokens

MESSAGES = [{"role": "user", "content": "Plan a warehouse restock before the holiday peak."}]


def make_caller(server, tmp_path, budget_usd=1.0, **kw):
    price = resolve_price("azure/test-deployment", price_model="azure/gpt-4o")
    ledger = Ledger(tmp_path, budget_usd)
    kw = {"timeout_s": 2.0, "backoff_base_s": 0.01, "backoff_max_s": 0.05, **kw}
    return LLMCaller("azure/test-deployment", price, ledger, api_key=FAKE_KEY, api_base=server.url, api_version="2024-10-21", **kw)


def test_price_comes_from_litellm_map_and_unknown_price_refuses():
    price = resolve_price("azure/test-deployment", price_model="azure/gpt-4o")
    assert (price.in_usd_per_mtok, price.out_usd_per_mtok) == (PRICE_IN, PRICE_OUT)
    assert resolve_price("openai/local", in_usd_per_mtok=0.1, out_usd_per_mtok=0.3).source == "spec"
    with pytest.raises(UserError, match="no price known"):
        resolve_price("azure/test-deployment")  # a deployment name is not a model
    with pytest.raises(UserError, match="must both be set"):
        resolve_price("openai/local", in_usd_per_mtok=0.1)


def test_a_call_settles_real_usage_and_uses_the_azure_route(server, tmp_path):
    caller = make_caller(server, tmp_path)
    result = caller.call(MESSAGES, max_tokens=300)
    assert "<problem>" in result.text and result.finish_reason == "stop"
    assert server.seen_paths == ["/openai/deployments/test-deployment/chat/completions?api-version=2024-10-21"]
    assert result.n_prompt_tokens <= prompt_tokens_upper_bound(MESSAGES)
    expected = (result.n_prompt_tokens * PRICE_IN + result.n_completion_tokens * PRICE_OUT) / 1e6
    assert result.cost_usd == pytest.approx(expected)
    assert caller.ledger.totals().spent_usd == pytest.approx(server.billed_cost_usd(PRICE_IN, PRICE_OUT))
    assert FAKE_KEY not in repr(caller)


def test_429_is_retried_after_the_servers_retry_after(server, tmp_path):
    server.faults = {"429": 1.0}
    server.retry_after_s = 0.3
    caller = make_caller(server, tmp_path, max_attempts=3)
    t0 = time.monotonic()
    with pytest.raises(CallFailed, match="retries exhausted") as e:
        asyncio.run(caller.acall(MESSAGES, max_tokens=100))
    assert time.monotonic() - t0 >= 2 * 0.3  # two waits of at least Retry-After
    assert e.value.status_code == 429 and server.requests == 3
    t = caller.ledger.totals()
    assert t.spent_usd == 0 and t.n_calls_released == 3  # 429s are not billed


def test_transient_5xx_then_success(server, tmp_path):
    server.faults = {"500": 0.5, "503": 0.5}
    caller = make_caller(server, tmp_path, max_attempts=20)
    result = asyncio.run(caller.acall(MESSAGES, max_tokens=300))
    assert result.attempts > 1 and result.finish_reason == "stop"
    assert server.status_counts[200] == 1


def test_timeout_is_retried_and_charged_at_worst_case(server, tmp_path):
    server.faults = {"slow": 1.0}
    server.slow_s = 1.5
    caller = make_caller(server, tmp_path, timeout_s=0.5, max_attempts=2)
    with pytest.raises(CallFailed) as e:
        caller.call(MESSAGES, max_tokens=100)
    worst = caller.worst_case_usd(MESSAGES, 100)
    assert e.value.status_code == 408
    assert e.value.cost_usd == pytest.approx(2 * worst)
    # the server billed both answers it produced; our ledger never counts less than the server
    assert caller.ledger.totals().spent_usd >= server.billed_cost_usd(PRICE_IN, PRICE_OUT)


def test_401_stops_at_once_without_retry(server, tmp_path):
    server.api_key = "the-right-key"
    caller = make_caller(server, tmp_path)
    with pytest.raises(ProviderRefused, match="HTTP 401") as e:
        caller.call(MESSAGES, max_tokens=100)
    assert server.requests == 1
    assert FAKE_KEY not in str(e.value)


def test_circuit_breaker_stops_when_most_calls_fail(server, tmp_path):
    server.faults = {"500": 1.0}
    caller = make_caller(server, tmp_path, breaker=CircuitBreaker(window=10, max_failure_ratio=0.8), max_attempts=100)
    with pytest.raises(CircuitOpen, match="10 of the last 10 calls failed"):
        caller.call(MESSAGES, max_tokens=100)
    assert server.requests == 10


def test_budget_exhausted_before_the_request(server, tmp_path):
    caller = make_caller(server, tmp_path, budget_usd=0.0005)
    with pytest.raises(BudgetExhausted):
        caller.call(MESSAGES, max_tokens=100)  # worst case 100 x $10/1M = $0.001 > $0.0005
    assert server.requests == 0
