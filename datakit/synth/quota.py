"""A provider's requests- and tokens-per-minute quota, kept in SQLite and shared by every worker process.

How to use it (datakit.synth.llm.LLMCaller does this around every attempt when given a Quota):

    quota = Quota(out_dir, "azure/gpt-4o", rpm=600, tpm=200_000, tpm_counts="max_tokens")
    n_booked = quota.tokens_for(messages, max_tokens)   # what the provider will count for this request
    await quota.acquire(n_booked)                       # waits for the request's slot, books it
    ...call...
    quota.correct(n_booked, n_used)                     # "usage" providers: give back what was not used
    quota.observe(headers, n_booked)                    # x-ratelimit-*: wait when the provider says it is full
    quota.pause(retry_after_s)                          # a 429: every worker waits that long

Pacing is GCRA (the "virtual scheduling" form of a token bucket): each request books a start time at
least 60/rpm seconds after the previous one and n_tokens x 60/tpm seconds of token time, so requests
leave evenly spaced at the quota's rate instead of in bursts that the provider answers with 429s.
The schedule (theoretical arrival times and the pause) is one row of `<folder>/quota.sqlite`, updated in
one `BEGIN IMMEDIATE` transaction per request, so every process using the folder shares it.

What the provider counts against TPM (`tpm_counts`):
- "max_tokens" (Azure OpenAI and OpenAI): the prompt's estimated tokens + max_tokens, when the request
  arrives; nothing is given back afterwards. This is the default for azure/ and openai/ models.
- "usage" (others): the tokens really used; the booking (prompt estimate + max_tokens) is corrected to
  the answer's usage after the call, so the next requests can start sooner.
Without configured limits nothing is paced, but `Retry-After` on a 429 and `x-ratelimit-remaining-*`
at zero still pause every worker until the provider's reset; `x-ratelimit-limit-*` headers (requests
and tokens per minute) are adopted as the pace when no limit is configured.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Literal
from datakit.synth.sqlite_wal import connect_wal

QUOTA_FILE = "quota.sqlite"
CHARS_PER_TOKEN = 4  # providers estimate prompt tokens from characters the same way
PER_MESSAGE_TOKENS = 4
MAX_PAUSE_S = 120.0  # never trust a header asking for longer than this

TpmCounts = Literal["usage", "max_tokens"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quota (
    key TEXT PRIMARY KEY,             -- litellm model string (one deployment)
    tat_requests REAL NOT NULL,       -- theoretical arrival time of the next request (unix seconds)
    tat_tokens REAL NOT NULL,         -- the same for tokens
    paused_until REAL NOT NULL,       -- no request starts before this (a 429's Retry-After, a reset)
    learned_rpm REAL,                 -- x-ratelimit-limit-requests, when no rpm is configured
    learned_tpm REAL,                 -- x-ratelimit-limit-tokens, when no tpm is configured
    n_pauses INTEGER NOT NULL DEFAULT 0
);
"""


def default_tpm_counts(model: str) -> TpmCounts:
    """Azure OpenAI and OpenAI count prompt + max_tokens at arrival; others count real usage."""
    return "max_tokens" if model.split("/", 1)[0] in ("azure", "openai", "azure_ai") else "usage"


def prompt_tokens_estimate(messages: list[dict]) -> int:
    """Prompt tokens as providers estimate them for rate limits: characters / 4, plus per-message overhead."""
    return sum(len(str(m.get("content", ""))) // CHARS_PER_TOKEN + PER_MESSAGE_TOKENS for m in messages) + PER_MESSAGE_TOKENS


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration_s(value: str | None) -> float | None:
    """'6m0s' / '1s' / '20ms' / '0.5' (seconds) / '1h2m' -> seconds; None if absent or unreadable."""
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(a + b for a, b in parts) != value.replace(" ", ""):
        return None
    scale = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(a) * scale[b] for a, b in parts)


def _number(headers: dict, name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def rate_limit_headers(headers) -> dict[str, str]:
    """The x-ratelimit-* / retry-after headers of a response, lower-cased, litellm's `llm_provider-` prefix removed."""
    out: dict[str, str] = {}
    for k, v in dict(headers or {}).items():
        k = str(k).lower().removeprefix("llm_provider-")
        if k.startswith("x-ratelimit-") or k in ("retry-after", "retry-after-ms"):
            out[k] = str(v)
    return out


class Quota:
    """The RPM/TPM schedule of one provider deployment in `<folder>/quota.sqlite`.

    folder: the run's output folder (worker processes of the run open the same file).
    key: the litellm model string; one schedule per deployment.
    rpm / tpm: the provider's requests / tokens per minute for this deployment (None: not paced).
    tpm_counts: what the provider counts against tpm ("max_tokens" or "usage", see the module doc).
    burst_s: seconds of quota that may leave at once (0: evenly spaced; providers enforce per-minute
        quotas over 1-10 s windows, so keep it small).
    """

    def __init__(self, folder: str | Path, key: str, *, rpm: float | None = None, tpm: float | None = None,
                 tpm_counts: TpmCounts | None = None, burst_s: float = 0.0):
        self.path = Path(folder) / QUOTA_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.key = key
        self.rpm, self.tpm = rpm, tpm
        self.tpm_counts: TpmCounts = tpm_counts or default_tpm_counts(key)
        self.burst_s = burst_s
        self._local = threading.local()
        self.n_waits = 0  # requests of this process that waited for their slot
        self.waited_s = 0.0
        conn = self._conn()
        conn.executescript(_SCHEMA)
        with self._tx() as c:
            c.execute("INSERT OR IGNORE INTO quota (key, tat_requests, tat_tokens, paused_until) VALUES (?, 0, 0, 0)", (key,))

    def __repr__(self) -> str:
        return f"Quota({self.key!r}, rpm={self.rpm}, tpm={self.tpm}, tpm_counts={self.tpm_counts!r})"

    # -- SQLite -------------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_wal(self.path, synchronous="OFF")  # a lost schedule after a power cut only costs pacing
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

    def _tx(self) -> "Quota._Tx":
        return Quota._Tx(self._conn())

    # -- what a request counts ------------------------------------------------------------------------
    def tokens_for(self, messages: list[dict], max_tokens: int) -> int:
        """Tokens to book for a request: the prompt estimate + max_tokens (the most it can count)."""
        return prompt_tokens_estimate(messages) + max_tokens

    def limits(self) -> tuple[float | None, float | None]:
        """(rpm, tpm) in force: the configured ones, else those learned from x-ratelimit-limit-* headers."""
        row = self._conn().execute("SELECT learned_rpm, learned_tpm FROM quota WHERE key=?", (self.key,)).fetchone()
        return (self.rpm or (row[0] if row else None), self.tpm or (row[1] if row else None))

    # -- booking ----------------------------------------------------------------------------------------
    def schedule(self, n_tokens: int) -> float:
        """Book the next request's start (one request, n_tokens tokens); returns seconds to wait for it."""
        if not (self.rpm or self.tpm):  # nothing to pace unless headers taught us limits: a plain read
            paused, l_rpm, l_tpm = self._conn().execute(
                "SELECT paused_until, learned_rpm, learned_tpm FROM quota WHERE key=?", (self.key,)).fetchone()
            if not (l_rpm or l_tpm):
                return paused - time.time()
        with self._tx() as c:
            tat_r, tat_t, paused, l_rpm, l_tpm = c.execute(
                "SELECT tat_requests, tat_tokens, paused_until, learned_rpm, learned_tpm FROM quota WHERE key=?", (self.key,)
            ).fetchone()
            rpm, tpm = self.rpm or l_rpm, self.tpm or l_tpm
            now = time.time()
            start = max(now, paused)
            if rpm:
                start = max(start, tat_r - self.burst_s)
                tat_r = max(tat_r, start) + 60.0 / rpm
            if tpm:
                start = max(start, tat_t - self.burst_s)
                tat_t = max(tat_t, start) + n_tokens * 60.0 / tpm
            c.execute("UPDATE quota SET tat_requests=?, tat_tokens=? WHERE key=?", (tat_r, tat_t, self.key))
        return start - now

    def _paused_for(self) -> float:
        (paused,) = self._conn().execute("SELECT paused_until FROM quota WHERE key=?", (self.key,)).fetchone()
        return paused - time.time()

    async def acquire(self, n_tokens: int) -> None:
        """Wait (asyncio) until this request may start under the quota; books it."""
        while True:
            wait = self.schedule(n_tokens)
            if wait > 0:
                self.n_waits += 1
                self.waited_s += wait
                await asyncio.sleep(wait)
            if self._paused_for() <= 0:  # a 429 elsewhere may have paused everyone meanwhile
                return

    def acquire_blocking(self, n_tokens: int) -> None:
        """Same as `acquire`, for threads."""
        while True:
            wait = self.schedule(n_tokens)
            if wait > 0:
                self.n_waits += 1
                self.waited_s += wait
                time.sleep(wait)
            if self._paused_for() <= 0:
                return

    def correct(self, n_booked: int, n_used: int) -> None:
        """After the answer: a "usage" provider counted n_used, not n_booked; give back the difference."""
        if self.tpm_counts != "usage" or n_used >= n_booked:
            return
        with self._tx() as c:
            (l_tpm,) = c.execute("SELECT learned_tpm FROM quota WHERE key=?", (self.key,)).fetchone()
            tpm = self.tpm or l_tpm
            if tpm:
                c.execute("UPDATE quota SET tat_tokens = tat_tokens - ? WHERE key=?", ((n_booked - n_used) * 60.0 / tpm, self.key))

    def pause(self, seconds: float) -> None:
        """Nobody starts a request for `seconds` (a 429's Retry-After, a reset the provider announced)."""
        seconds = min(max(0.0, seconds), MAX_PAUSE_S)
        if seconds <= 0:
            return
        with self._tx() as c:
            c.execute("UPDATE quota SET paused_until = max(paused_until, ?), n_pauses = n_pauses + 1 WHERE key=?",
                      (time.time() + seconds, self.key))

    def observe(self, headers, n_tokens_next: int) -> None:
        """Honour a response's x-ratelimit-* headers: adopt announced limits, pause when nothing remains."""
        h = rate_limit_headers(headers)
        if not h:
            return
        limit_r, limit_t = _number(h, "x-ratelimit-limit-requests"), _number(h, "x-ratelimit-limit-tokens")
        if (limit_r and not self.rpm) or (limit_t and not self.tpm):
            with self._tx() as c:
                if limit_r and not self.rpm:
                    c.execute("UPDATE quota SET learned_rpm=? WHERE key=?", (limit_r, self.key))
                if limit_t and not self.tpm:
                    c.execute("UPDATE quota SET learned_tpm=? WHERE key=?", (limit_t, self.key))
        waits = []
        for kind, need in (("requests", 1), ("tokens", n_tokens_next)):
            remaining = _number(h, f"x-ratelimit-remaining-{kind}")
            reset_s = parse_duration_s(h.get(f"x-ratelimit-reset-{kind}"))
            if remaining is None or remaining >= need or reset_s is None:
                continue
            limit = _number(h, f"x-ratelimit-limit-{kind}")
            if limit and limit > remaining:  # reset = time until full again: wait for the share we need
                waits.append(reset_s * min(1.0, (need - remaining) / (limit - remaining)))
            else:
                waits.append(reset_s)
        if waits:
            self.pause(max(waits))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
