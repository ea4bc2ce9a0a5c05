"""A real OpenAI- and Azure-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

    with FakeLLMServer(latency_s=0.0, faults={"429": 0.1, "500": 0.05}) as server:
        server.url            # http://127.0.0.1:<port>   (api_base for "azure/<deployment>")
        server.openai_url     # http://127.0.0.1:<port>/v1 (api_base for "openai/<model>")
        ...point litellm at it...
        server.billed_prompt_tokens, server.billed_completion_tokens, server.requests

Routes: `POST /v1/chat/completions` and `POST /openai/deployments/{deployment}/chat/completions?api-version=...`.
Batch API: `POST {/openai,/v1}/files`, `POST .../batches` (completed at once), `GET .../batches/{id}`,
`GET .../files/{id}/content`. Every 200 answer carries `usage`. The server keeps its own count of billed tokens: a request is billed
when the server produces an answer (also when the answer is truncated, malformed, or so slow that the
client has already given up), never for 429/5xx. This is what the budget tests compare with.

faults: probability of each injected fault per request, drawn from a seeded RNG:
  "429" (with `Retry-After: <retry_after_s>`), "500", "503", "slow" (sleeps `slow_s`, then bills and answers),
  "length" (finish_reason "length", completion = max_tokens), "malformed" (no <answer> tag),
  "duplicate" (always the same problem text, for near-duplicate checks), "401" (bad key), "403" (no permission).
The answer text is derived from a hash of the prompt, so different prompts give different problems.

Quota (rpm / tpm, like an Azure OpenAI deployment): token buckets that hold `window_s` seconds of the
per-minute limits and refill continuously. A request that does not fit gets 429 with `Retry-After`
(whole seconds) and `retry-after-ms`; every answer carries `x-ratelimit-limit|remaining|reset-requests`
and `-tokens`. tpm_counts "max_tokens" counts prompt + max_tokens when the request arrives (Azure,
OpenAI); "usage" counts the prompt at arrival and the completion when it is produced.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sys
import threading
import time

from aiohttp import web

WORDS = (
    "cache queue shard replica budget truck depot route warehouse sensor agent scheduler lease quota "
    "latency failover rollout migration schema index ledger auction drone crane berth nurse shift "
    "clinic reactor grant dataset sample cohort protocol pipeline tenant region vendor contract "
    "forecast inventory pallet courier backlog sprint release canary consensus heartbeat token"
).split()


def count_tokens(text: str) -> int:
    """The server's own token count: one token per 4 characters, at least one."""
    return max(1, (len(text) + 3) // 4)


def make_answer(prompt: str, duplicate: bool = False) -> str:
    """A well-formed planning answer whose wording depends on the prompt."""
    digest = hashlib.sha256(("dup" if duplicate else prompt).encode()).digest()
    rng = random.Random(digest)
    words = [rng.choice(WORDS) for _ in range(40)]
    problem = " ".join(words[:24]).capitalize() + "."
    steps = "\n".join(f"{i}. Handle the {words[24 + i]} before the {words[30 + i]}." for i in range(1, 6))
    answer = f"Plan: {' then '.join(words[35:40])}."
    return f"<problem>{problem}</problem>\n<thinking>\n{steps}\n</thinking>\n<answer>{answer}</answer>"


class FakeLLMServer:
    """The server above, running on its own event loop in a daemon thread; use as a context manager."""

    def __init__(
        self,
        latency_s: float = 0.0,
        faults: dict[str, float] | None = None,
        seed: int = 0,
        retry_after_s: float = 0.05,
        slow_s: float = 3.0,
        api_key: str | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        tpm_counts: str = "max_tokens",
        window_s: float = 10.0,
    ):
        self.latency_s = latency_s
        self.faults = dict(faults or {})
        self.retry_after_s = retry_after_s
        self.slow_s = slow_s
        self.api_key = api_key  # when set, requests with another key get 401
        self.rpm, self.tpm, self.tpm_counts, self.window_s = rpm, tpm, tpm_counts, window_s
        self._buckets = {"requests": (rpm or 0) * window_s / 60, "tokens": (tpm or 0) * window_s / 60}
        self._buckets_t = time.monotonic()
        self.answer_times: list[float] = []  # time.time() of every 200 answer (throughput under a quota)
        self.counted_tokens = 0  # tokens the quota counted for answered requests (tpm_counts decides which)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.requests = 0
        self.status_counts: dict[int, int] = {}
        self.billed_prompt_tokens = 0
        self.billed_completion_tokens = 0
        self.seen_paths: list[str] = []
        self.seen_auth: list[str] = []
        self.seen_params: list[dict] = []  # model, max_tokens and temperature of each chat request
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.batch_requests = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def billed_cost_usd(self, price_in_usd_per_mtok: float, price_out_usd_per_mtok: float) -> float:
        return (self.billed_prompt_tokens * price_in_usd_per_mtok + self.billed_completion_tokens * price_out_usd_per_mtok) / 1e6

    # -- request handling -------------------------------------------------------------------------
    def _draw_fault(self) -> str | None:
        with self._lock:
            for name, p in self.faults.items():
                if self._rng.random() < p:
                    return name
        return None

    # -- quota ------------------------------------------------------------------------------------
    def _limits(self) -> dict[str, float | None]:
        return {"requests": self.rpm, "tokens": self.tpm}

    def _refill(self) -> None:
        now = time.monotonic()
        dt, self._buckets_t = now - self._buckets_t, now
        for kind, limit in self._limits().items():
            if limit:
                self._buckets[kind] = min(limit * self.window_s / 60, self._buckets[kind] + dt * limit / 60)

    def _take_quota(self, n_tokens: int) -> float:
        """Book one request and n_tokens; 0.0 if it fits, else the seconds until it would fit (nothing booked)."""
        with self._lock:
            self._refill()
            need = {"requests": 1, "tokens": n_tokens}
            waits = [(need[k] - self._buckets[k]) * 60 / limit for k, limit in self._limits().items() if limit and self._buckets[k] < need[k]]
            if waits:
                return max(waits)
            for kind, limit in self._limits().items():
                if limit:
                    self._buckets[kind] -= need[kind]
            return 0.0

    def _use_tokens(self, n_tokens: int) -> None:
        with self._lock:
            if self.tpm:
                self._refill()
                self._buckets["tokens"] -= n_tokens

    def _quota_headers(self) -> dict[str, str]:
        headers = {}
        with self._lock:
            self._refill()
            for kind, limit in self._limits().items():
                if limit:
                    level = self._buckets[kind]
                    cap = limit * self.window_s / 60
                    headers[f"x-ratelimit-limit-{kind}"] = f"{limit:g}"
                    headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, int(level)))
                    headers[f"x-ratelimit-reset-{kind}"] = f"{max(0.0, cap - level) * 60 / limit:.3f}s"
        return headers

    def _count(self, status: int) -> None:
        with self._lock:
            self.status_counts[status] = self.status_counts.get(status, 0) + 1

    async def _chat(self, request: web.Request) -> web.Response:
        with self._lock:
            self.requests += 1
            self.seen_paths.append(request.path_qs)
            self.seen_auth.append(request.headers.get("api-key") or request.headers.get("Authorization", ""))
        body = await request.json()
        with self._lock:
            self.seen_params.append({k: body.get(k) for k in ("model", "max_tokens", "max_completion_tokens", "temperature")})
        if self.api_key is not None:
            given = request.headers.get("api-key") or request.headers.get("Authorization", "").removeprefix("Bearer ")
            if given != self.api_key:
                self._count(401)
                return web.json_response({"error": {"message": "invalid api key", "code": "401"}}, status=401)
        if self.rpm or self.tpm:
            messages = body.get("messages", [])
            n_prompt = sum(count_tokens(str(m.get("content", ""))) + 4 for m in messages)
            n_max = int(body.get("max_completion_tokens") or body.get("max_tokens") or 1024)
            wait_s = self._take_quota(n_prompt + n_max if self.tpm_counts == "max_tokens" else n_prompt)
            if wait_s > 0:
                self._count(429)
                headers = {"Retry-After": str(max(1, int(wait_s + 0.999))), "retry-after-ms": str(int(wait_s * 1000) + 1), **self._quota_headers()}
                return web.json_response({"error": {"message": "Requests to this deployment have exceeded the rate limit", "code": "429"}},
                                         status=429, headers=headers)
        fault = self._draw_fault()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if fault in ("429", "500", "503", "401", "403"):
            status = int(fault)
            self._count(status)
            headers = {"Retry-After": f"{self.retry_after_s:g}"} if status == 429 else {}
            return web.json_response({"error": {"message": f"injected {status}", "code": str(status)}}, status=status, headers=headers)

        completion = self._complete(body, fault)
        usage = completion["usage"]
        if self.tpm_counts == "usage":
            self._use_tokens(usage["completion_tokens"])
        with self._lock:
            self.counted_tokens += usage["total_tokens"] if self.tpm_counts == "usage" else (
                usage["prompt_tokens"] + int(body.get("max_completion_tokens") or body.get("max_tokens") or 1024))
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
        self._count(200)
        with self._lock:
            self.answer_times.append(time.time())
        return web.json_response(completion, headers=self._quota_headers())

    def _complete(self, body: dict, fault: str | None) -> dict:
        """A chat.completion for `body`, billed now."""
        messages = body.get("messages", [])
        prompt_text = "\n".join(str(m.get("content", "")) for m in messages)
        prompt_tokens = sum(count_tokens(str(m.get("content", ""))) + 4 for m in messages)
        max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 1024)
        text = make_answer(prompt_text, duplicate=fault == "duplicate")
        finish_reason = "stop"
        if fault == "malformed":
            text = text.split("<answer>")[0]
        completion_tokens = min(count_tokens(text), max_tokens)
        if fault == "length" or count_tokens(text) > max_tokens:
            text = text[: max_tokens * 4 // 2]
            completion_tokens = max_tokens
            finish_reason = "length"
        # Billed as soon as the answer is produced, whether or not the client is still listening.
        with self._lock:
            self.billed_prompt_tokens += prompt_tokens
            self.billed_completion_tokens += completion_tokens
            n = self.requests
        return {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
        }

    # -- Batch API: files + batches, completed at once (batch_discount applies to what is billed) --------------
    async def _file_upload(self, request: web.Request) -> web.Response:
        data = await request.post()
        content = data["file"].file.read()
        with self._lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = content
        return web.json_response({"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                                  "filename": data["file"].filename, "purpose": "batch", "status": "processed"})

    async def _file_content(self, request: web.Request) -> web.Response:
        content = self.files.get(request.match_info["file_id"])
        if content is None:
            return web.json_response({"error": {"message": "no such file"}}, status=404)
        return web.Response(body=content, content_type="application/octet-stream")

    def _batch_object(self, batch_id: str) -> dict:
        return self.batches[batch_id]

    async def _batch_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        lines = [json.loads(x) for x in self.files[body["input_file_id"]].decode().splitlines() if x.strip()]
        out = []
        for line in lines:
            fault = self._draw_fault()
            fault = fault if fault in ("length", "malformed", "duplicate") else None
            completion = self._complete(line["body"], fault)
            out.append({"id": f"batch_req_{line['custom_id']}", "custom_id": line["custom_id"],
                        "response": {"status_code": 200, "request_id": "r", "body": completion}, "error": None})
        with self._lock:
            self.batch_requests += len(lines)
            out_id = f"file-{len(self.files) + 1}"
            self.files[out_id] = "".join(json.dumps(o) + "\n" for o in out).encode()
            batch_id = f"batch-{len(self.batches) + 1}"
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": body.get("endpoint", "/v1/chat/completions"),
                "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "completed",
                "created_at": int(time.time()), "output_file_id": out_id,
                "request_counts": {"total": len(lines), "completed": len(lines), "failed": 0},
            }
        return web.json_response(dict(self.batches[batch_id], status="validating"))

    async def _batch_get(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return web.json_response({"error": {"message": "no such batch"}}, status=404)
        return web.json_response(batch)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "FakeLLMServer":
        started = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            app.router.add_post("/chat/completions", self._chat)
            app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
            for prefix in ("/openai", "/v1"):
                app.router.add_post(prefix + "/files", self._file_upload)
                app.router.add_get(prefix + "/files/{file_id}/content", self._file_content)
                app.router.add_post(prefix + "/batches", self._batch_create)
                app.router.add_get(prefix + "/batches/{batch_id}", self._batch_get)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="fake-llm-server")
        self._thread.start()
        started.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    """Run the server in the foreground: `python -m datakit.synth.testing.server --port 8123 --latency 0.2`."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rpm", type=float, default=None, help="requests per minute quota (429 beyond it)")
    parser.add_argument("--tpm", type=float, default=None, help="tokens per minute quota")
    parser.add_argument("--tpm-counts", choices=["max_tokens", "usage"], default="max_tokens")
    parser.add_argument("--commands", action="store_true",
                        help="read commands on stdin: 'stats' prints the counts as JSON, 'reset' clears them; EOF stops")
    args = parser.parse_args()
    with FakeLLMServer(latency_s=args.latency, rpm=args.rpm, tpm=args.tpm, tpm_counts=args.tpm_counts) as server:
        print(server.url, flush=True)
        if not args.commands:
            threading.Event().wait()
        for line in sys.stdin:
            with server._lock:
                if line.strip() == "stats":
                    print(json.dumps({"requests": server.requests, "status_counts": server.status_counts,
                                      "answer_times": server.answer_times, "counted_tokens": server.counted_tokens}), flush=True)
                elif line.strip() == "reset":
                    server.requests, server.status_counts, server.answer_times, server.counted_tokens = 0, {}, [], 0


if __name__ == "__main__":
    main()
