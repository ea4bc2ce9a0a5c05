"""One litellm chat call under the hard budget: reserve the worst case, call, settle the real usage.

How to use it:

    from datakit.synth.ledger import Ledger, BudgetExhausted
    from datakit.synth.llm import LLMCaller, CallFailed
    from datakit.synth.prices import resolve_price

    ledger = Ledger(out_dir, budget_usd=20.0)
    caller = LLMCaller(
        model="azure/my-deployment",                     # any litellm model string
        price=resolve_price("azure/my-deployment", price_model="azure/gpt-4o"),
        ledger=ledger,
        api_key=os.environ["AZURE_API_KEY"], api_base=..., api_version=...,
    )
    result = await caller.acall(messages, max_tokens=2048, label="seed-17")   # asyncio (many in flight)
    result = caller.call(messages, max_tokens=2048, label="seed-17")          # threads / plain code
    result.text, result.finish_reason, result.cost_usd, result.n_prompt_tokens, result.n_completion_tokens

What it raises (catch these in the run loop):
- `BudgetExhausted` (from the ledger): the worst case of the next attempt does not fit; stop launching.
- `CallFailed`: this one request failed after retries (or was refused by a content filter); others may go on.
- `ProviderRefused` (a UserError): HTTP 400/401/403/404: wrong key, deployment, model or request; stop the run.
- `CircuitOpen` (a UserError): most recent calls failed; stop the run (rerun later to resume).

Rules, all in this file:
- Worst case of an attempt = upper bound of prompt tokens x input price + max_tokens x output price
  (reasoning tokens are output tokens and are capped by max_tokens). The prompt bound is its UTF-8
  byte count plus per-message overhead: no BPE token is shorter than one byte.
- Errors are classified on `.status_code` (litellm's exception classes differ between providers).
  429, 5xx, 408 and timeouts are retried with exponential backoff and jitter, waiting at least the
  server's `Retry-After`. HTTP 429/5xx answers are not billed (reservation released); a timeout may
  have been billed (the server kept generating), so it is charged at its worst case.
- A 200 answer is settled at its real usage even if the output is later rejected; without usage it is
  charged at worst case.
- The API key is passed per call, never stored by litellm globals, and scrubbed from error text.
- The first request of a caller goes out alone (a probe); the others wait for its answer. A refusal
  (400/401/403/404) closes the caller: every waiting or later call raises the same ProviderRefused
  without sending anything, so a wrong key costs one request, not one per worker.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
from collections import deque
from dataclasses import dataclass

from datakit.errors import UserError
from datakit.synth.ledger import BudgetExhausted, Ledger
from datakit.synth.prices import Price, import_litellm
from datakit.synth.quota import Quota

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
TIMEOUT_STATUS = 408
PER_MESSAGE_OVERHEAD_TOKENS = 16

__all__ = [
    "BudgetExhausted",
    "CallFailed",
    "CallResult",
    "CircuitBreaker",
    "CircuitOpen",
    "LLMCaller",
    "ProviderRefused",
    "prompt_tokens_upper_bound",
]


class CallFailed(Exception):
    """One request failed for good (retries exhausted, or a per-request refusal such as a content filter)."""

    def __init__(self, reason: str, status_code: int | None, attempts: int, cost_usd: float):
        self.reason = reason
        self.status_code = status_code
        self.attempts = attempts
        self.cost_usd = cost_usd  # dollars charged to the ledger for the failed attempts
        super().__init__(f"{reason} (status {status_code}, {attempts} attempts)")


class ProviderRefused(UserError):
    """HTTP 400/401/403/404: the request can never succeed as configured; the run stops."""


class CircuitOpen(UserError):
    """Most recent calls failed; the run stops instead of burning time and money."""


@dataclass
class CallResult:
    text: str
    finish_reason: str | None
    n_prompt_tokens: int
    n_completion_tokens: int
    n_reasoning_tokens: int
    cost_usd: float  # everything this call charged: the answer plus billed failed attempts
    attempts: int
    usage_missing: bool = False


def prompt_tokens_upper_bound(messages: list[dict]) -> int:
    """More prompt tokens than any tokenizer gives these messages: UTF-8 bytes plus per-message overhead."""
    return sum(len(str(m.get("content", "")).encode()) + PER_MESSAGE_OVERHEAD_TOKENS for m in messages) + PER_MESSAGE_OVERHEAD_TOKENS


class CircuitBreaker:
    """Trips when at least `max_failure_ratio` of the last `window` attempts failed.

    window: how many recent attempts are judged (the breaker never trips before that many).
    max_failure_ratio: the failing share that stops the run (0.8: four in five failed).
    """

    def __init__(self, window: int = 20, max_failure_ratio: float = 0.8):
        self.window = window
        self.max_failure_ratio = max_failure_ratio
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._lock = threading.Lock()
        self.last_error = ""

    def record(self, ok: bool, error: str = "") -> None:
        with self._lock:
            self._outcomes.append(ok)
            if not ok:
                self.last_error = error

    def check(self) -> None:
        with self._lock:
            n = len(self._outcomes)
            n_failed = n - sum(self._outcomes)
        if n >= self.window and n_failed >= self.max_failure_ratio * n:
            raise CircuitOpen(
                f"{n_failed} of the last {n} calls failed (last: {self.last_error})",
                field="provider",
                fix="check the provider's status, quota and rate limits, then rerun the same command to resume",
            )


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    if isinstance(code, int):
        return code
    name = type(exc).__name__.lower()
    if "timeout" in name:
        return TIMEOUT_STATUS
    return None


def _error_headers(exc: BaseException) -> dict:
    """The HTTP headers of a failed request, lower-cased (litellm keeps them on the exception)."""
    headers: dict = {}
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "headers", None) is not None:
        headers.update({k.lower(): v for k, v in response.headers.items()})
    extra = getattr(exc, "litellm_response_headers", None)
    if extra:
        headers.update({k.lower(): v for k, v in dict(extra).items()})
    return headers


def _retry_after_s(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms` or `Retry-After`, seconds or HTTP date)."""
    headers = _error_headers(exc)
    if "retry-after-ms" in headers:
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class ProbeGate:
    """The first request goes out alone; the rest wait for its answer. A refusal is kept and re-raised.

    Closed until the first attempt is answered (any answer but a refusal opens it). An attempt that never
    reached the provider (budget, cancel) lets the next waiter probe instead. Usable from threads and
    asyncio (the async wait polls, and only while the first request is in flight).
    """

    def __init__(self, open_: bool = False):
        self._cond = threading.Condition()
        self._probing = False
        self._open = open_
        self.refused: ProviderRefused | None = None

    def _raise_if_refused(self) -> None:
        if self.refused is not None:
            raise ProviderRefused(self.refused.what, field=self.refused.field, fix=self.refused.fix)

    def try_enter(self) -> bool:
        """True if an attempt may go out now: the gate is open, or this attempt becomes the probe."""
        with self._cond:
            self._raise_if_refused()
            if self._open:
                return True
            if not self._probing:
                self._probing = True
                return True
            return False

    def done(self, refused: ProviderRefused | None, *, answered: bool = True) -> None:
        """After an attempt: keep a refusal; open the gate if the provider answered otherwise."""
        with self._cond:
            if refused is not None and self.refused is None:
                self.refused = refused
            if self._probing and not self._open:
                self._probing = False
                self._open = answered and refused is None
            self._cond.notify_all()

    def wait_blocking(self) -> None:
        while not self.try_enter():
            with self._cond:
                self._cond.wait(0.05)

    async def wait(self) -> None:
        delay = 0.002
        while not self.try_enter():
            await asyncio.sleep(delay)
            delay = min(0.05, delay * 2)


class LLMCaller:
    """Budgeted, retried, circuit-broken litellm chat calls for one model.

    model: litellm model string ("azure/<deployment>", "openai/<model>", "gemini/gemini-2.5-pro", ...).
    price: the dollars per token used for reservations, settlements and recorded on rows.
    ledger: the folder's budget ledger.
    api_key/api_base/api_version: passed to litellm per call (never set globally).
    timeout_s: seconds before a request is abandoned (and charged at its worst case).
    max_attempts: tries per request, the first one included.
    backoff_base_s/backoff_max_s: exponential backoff (base x 2^k, jittered to 50-100 %, capped).
    breaker: shared circuit breaker (one per run).
    extra: more litellm keyword arguments (temperature, reasoning_effort, ...).
    quota: the provider's RPM/TPM schedule (datakit.synth.quota); None: only concurrency limits requests.
    probe: send the first request alone (False where someone else already probed: worker processes).
    """

    def __init__(
        self,
        model: str,
        price: Price,
        ledger: Ledger,
        *,
        api_key: str | None = None,
        api_base: str | None = None,
        api_version: str | None = None,
        timeout_s: float = 120.0,
        max_attempts: int = 6,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        breaker: CircuitBreaker | None = None,
        extra: dict | None = None,
        seed: int | None = None,
        quota: Quota | None = None,
        probe: bool = True,
    ):
        self.model = model
        self.price = price
        self.ledger = ledger
        self._api_key = api_key
        self.api_base = api_base
        self.api_version = api_version
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.breaker = breaker or CircuitBreaker()
        self.extra = dict(extra or {})
        self.quota = quota
        self._rng = random.Random(seed)
        self.litellm = import_litellm()
        self.gate = ProbeGate(open_=not probe)

    def __repr__(self) -> str:  # never show the key
        return f"LLMCaller(model={self.model!r}, api_base={self.api_base!r})"

    def redact(self, text: str) -> str:
        """`text` with the API key removed (for error messages that reach logs or files)."""
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    def worst_case_usd(self, messages: list[dict], max_tokens: int) -> float:
        return self.price.cost_usd(prompt_tokens_upper_bound(messages), max_tokens)

    def _kwargs(self, messages: list[dict], max_tokens: int) -> dict:
        kw = dict(
            model=self.model,
            messages=messages,
            max_tokens=max_tokens,
            timeout=self.timeout_s,
            num_retries=0,  # retries are ours: each attempt must be reserved and settled
            max_retries=0,  # and the OpenAI SDK must not retry behind our back
            # our price, so that litellm's own per-call cost calculation skips its model-map lookups
            input_cost_per_token=self.price.in_usd_per_mtok / 1e6,
            output_cost_per_token=self.price.out_usd_per_mtok / 1e6,
            **self.extra,
        )
        if self._api_key:
            kw["api_key"] = self._api_key
        if self.api_base:
            kw["api_base"] = self.api_base
        if self.api_version:
            kw["api_version"] = self.api_version
        return kw

    # -- the shared steps of one attempt ------------------------------------------------------------
    def _settle_response(self, rid: int, response, reserved_usd: float, label: str, n_booked: int = 0) -> CallResult:
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        n_in = int(getattr(usage, "prompt_tokens", 0) or 0) if usage else 0
        n_out = int(getattr(usage, "completion_tokens", 0) or 0) if usage else 0
        details = getattr(usage, "completion_tokens_details", None) if usage else None
        n_reasoning = int(getattr(details, "reasoning_tokens", 0) or 0) if details else 0
        if n_reasoning > n_out:  # a provider reporting reasoning apart from completion tokens
            n_out += n_reasoning
        usage_missing = usage is None or (n_in == 0 and n_out == 0)
        cost = reserved_usd if usage_missing else self.price.cost_usd(n_in, n_out)
        self.ledger.settle(rid, cost, n_prompt_tokens=n_in, n_completion_tokens=n_out, note=label + (" usage missing: worst case" if usage_missing else ""))
        self.breaker.record(True)
        if self.quota is not None:
            hidden = getattr(response, "_hidden_params", None) or {}
            self.quota.observe(hidden.get("additional_headers") or {}, n_booked)
            if not usage_missing:
                self.quota.correct(n_booked, n_in + n_out)
        text = choice.message.content or ""
        return CallResult(text, choice.finish_reason, n_in, n_out, n_reasoning, cost, 0, usage_missing)

    def _after_error(self, rid: int, exc: BaseException, reserved_usd: float, attempt: int) -> tuple[float, float, str, int | None]:
        """Book a failed attempt; returns (charged_usd, wait_s before the next attempt, reason, status)."""
        status = _status_code(exc)
        message = " ".join(self.redact(f"{type(exc).__name__}: {exc}").split())[:300]  # one line
        if status == TIMEOUT_STATUS:
            self.ledger.settle(rid, reserved_usd, note="timeout: may have been billed, charged at worst case")
            charged = reserved_usd
        else:
            self.ledger.release(rid, note=f"status {status}: not billed")
            charged = 0.0
        self.breaker.record(False, message)
        if status is not None and status not in RETRYABLE_STATUS:
            if "content_filter" in message or "content management policy" in message:
                raise CallFailed("content_filter", status, attempt, charged)
            raise ProviderRefused(
                f"{self.model} answered HTTP {status}: {message}",
                field="provider",
                fix={
                    401: "check the API key environment variable",
                    403: "check the key's permissions for this deployment/model",
                    404: "check the model / deployment name and api_base / api_version",
                }.get(status, "check the model name, max_tokens and the provider profile"),
            )
        wait = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1)) * self._rng.uniform(0.5, 1.0)
        retry_after = _retry_after_s(exc)
        if retry_after is not None:
            wait = max(wait, retry_after)
        if self.quota is not None and status == 429:  # everyone waits, not only this request
            self.quota.observe(_error_headers(exc), 0)
            self.quota.pause(wait)
        return charged, wait, message, status

    # -- the probe gate -------------------------------------------------------------------------------
    @property
    def refused(self) -> ProviderRefused | None:
        return self.gate.refused

    def _probe_done(self, refused: ProviderRefused | None, *, answered: bool = True) -> None:
        self.gate.done(refused, answered=answered)

    def _wait_probe(self) -> None:
        self.gate.wait_blocking()

    async def _await_probe(self) -> None:
        await self.gate.wait()

    def _attempt_failed(self, rid: int, exc: BaseException, reserved_usd: float, attempt: int) -> tuple[float, float, str, int | None]:
        try:
            out = self._after_error(rid, exc, reserved_usd, attempt)
        except ProviderRefused as refused:
            self._probe_done(refused)
            raise
        except BaseException:
            self._probe_done(None)
            raise
        self._probe_done(None)
        return out

    # -- asyncio ------------------------------------------------------------------------------------
    async def acall(self, messages: list[dict], *, max_tokens: int, label: str = "") -> CallResult:
        """One chat completion (retried); see the module docstring for what it raises."""
        worst = self.worst_case_usd(messages, max_tokens)
        charged_total = 0.0
        reason, status = "", None
        n_booked = self.quota.tokens_for(messages, max_tokens) if self.quota is not None else 0
        for attempt in range(1, self.max_attempts + 1):
            await self._await_probe()
            try:
                if self.quota is not None:
                    await self.quota.acquire(n_booked)
                self.breaker.check()
                rid = self.ledger.reserve(worst, label=label)
            except BaseException:
                self._probe_done(None, answered=False)
                raise
            try:
                response = await self.litellm.acompletion(**self._kwargs(messages, max_tokens))
            except asyncio.CancelledError:
                self.ledger.settle(rid, worst, note="cancelled in flight: charged at worst case")
                self._probe_done(None, answered=False)
                raise
            except Exception as exc:  # noqa: BLE001 - classified on status code below
                charged, wait, reason, status = self._attempt_failed(rid, exc, worst, attempt)
                charged_total += charged
                if attempt < self.max_attempts:
                    await asyncio.sleep(wait)
                continue
            self._probe_done(None)
            result = self._settle_response(rid, response, worst, label, n_booked)
            result.cost_usd += charged_total
            result.attempts = attempt
            return result
        raise CallFailed(f"retries exhausted: {reason}", status, self.max_attempts, charged_total)

    # -- threads / plain code ---------------------------------------------------------------------
    def call(self, messages: list[dict], *, max_tokens: int, label: str = "") -> CallResult:
        """Same as `acall`, blocking (safe to use from many threads)."""
        worst = self.worst_case_usd(messages, max_tokens)
        charged_total = 0.0
        reason, status = "", None
        n_booked = self.quota.tokens_for(messages, max_tokens) if self.quota is not None else 0
        for attempt in range(1, self.max_attempts + 1):
            self._wait_probe()
            try:
                if self.quota is not None:
                    self.quota.acquire_blocking(n_booked)
                self.breaker.check()
                rid = self.ledger.reserve(worst, label=label)
            except BaseException:
                self._probe_done(None, answered=False)
                raise
            try:
                response = self.litellm.completion(**self._kwargs(messages, max_tokens))
            except Exception as exc:  # noqa: BLE001
                charged, wait, reason, status = self._attempt_failed(rid, exc, worst, attempt)
                charged_total += charged
                if attempt < self.max_attempts:
                    time.sleep(wait)
                continue
            except BaseException:
                self.ledger.settle(rid, worst, note="interrupted in flight: charged at worst case")
                self._probe_done(None, answered=False)
                raise
            self._probe_done(None)
            result = self._settle_response(rid, response, worst, label, n_booked)
            result.cost_usd += charged_total
            result.attempts = attempt
            return result
        raise CallFailed(f"retries exhausted: {reason}", status, self.max_attempts, charged_total)
