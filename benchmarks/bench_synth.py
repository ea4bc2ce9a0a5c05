"""Throughput of `datakit synth planning` against a local server: without a quota, and under one.

    python benchmarks/bench_synth.py                       # both parts, about 4 minutes on 2 cores
    python benchmarks/bench_synth.py --part free --concurrency 8 32 --workers 1 2
    python benchmarks/bench_synth.py --part quota --rpm 600 --tpm 200000 --duration 75

The server (datakit.synth.testing.server) runs in its own process so it does not share our GIL; it
counts answers and their times itself, and its quota (when set) answers 429 with Retry-After beyond it.

Part "free" (no quota, 200 ms latency): for each concurrency c, ideal requests/s = c / latency.
- call: the budgeted call alone (LLMCaller.acall: ledger reserve/settle, quota check, litellm), one
  process, with the client CPU per request: one process cannot exceed 1000 / (cpu ms) requests/s.
- generator (workers w): the full `run_planning` (calls + validation + near-duplicate check + JSONL),
  with the calls made by w worker processes; the rate is the server's answers per second after the
  first c answers (worker start-up, i.e. importing litellm, is not counted). Goal: >= 0.8x at c = 32.
Part "quota" (rpm/tpm quota at the server, tpm counted as prompt + max_tokens like Azure):
the generator at concurrency 32 for --duration seconds, with the quota configured in the provider
profile, then without it (paced by the limits the server announces in x-ratelimit-* headers). The
binding quota is min(rpm, tpm / tokens counted per request). Goal: >= 0.9x of it with < 1 % 429s.
Anchors: litellm + OpenAI SDK cost ~8-15 ms CPU per request here; providers' quotas are per deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parents[1]


class Server:
    """The test server in its own process, asked for its counts over stdin."""

    def __init__(self, latency_s: float, rpm: float | None = None, tpm: float | None = None):
        args = [sys.executable, "-m", "datakit.synth.testing.server", "--latency", str(latency_s), "--commands"]
        if rpm:
            args += ["--rpm", str(rpm)]
        if tpm:
            args += ["--tpm", str(tpm)]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()

    def _ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline() if command == "stats" else ""

    def stats(self) -> dict:
        return json.loads(self._ask("stats"))

    def reset(self) -> None:
        self._ask("reset")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def bench_calls(url: str, concurrency: int, n: int) -> tuple[float, float]:
    """(requests/s, client CPU ms per request) of n budgeted calls with `concurrency` in flight, one process."""
    from datakit.synth.ledger import Ledger
    from datakit.synth.llm import LLMCaller
    from datakit.synth.prices import resolve_price
    from datakit.synth.quota import Quota

    with tempfile.TemporaryDirectory() as d:
        caller = LLMCaller("azure/bench", resolve_price("azure/bench", price_model="azure/gpt-4o"), Ledger(d, 1e6),
                           api_key="bench-key", api_base=url, api_version="2024-10-21", timeout_s=30, quota=Quota(d, "azure/bench"))
        messages = [{"role": "user", "content": "plan a bench run"}]

        async def main() -> tuple[float, float]:
            sem = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with sem:
                    await caller.acall(messages + [{"role": "user", "content": str(i)}], max_tokens=400)

            await asyncio.gather(*[one(i) for i in range(concurrency)])  # warm-up: connections, imports
            t0, cpu0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*[one(i) for i in range(n)])
            return n / (time.perf_counter() - t0), (time.process_time() - cpu0) / n * 1000

        return asyncio.run(main())


def _spec(folder: Path, max_tokens: int, quota: dict | None = None) -> Path:
    text = (REPO / "synth" / "planning.toml").read_text().replace("max_tokens = 4096", f"max_tokens = {max_tokens}")
    if quota:
        keys = "".join(f"{k} = {v}\n" for k, v in quota.items())
        text = text.replace("[provider.azure]\n", "[provider.azure]\n" + keys, 1)
    path = folder / "planning.toml"
    path.write_text(text)
    return path


def bench_generator(server: Server, concurrency: int, n: int, workers: int, max_tokens: int = 400, quota: dict | None = None) -> dict:
    """Run run_planning for n records; the server's answers give the rate (after the first `concurrency`)."""
    from datakit.synth.planning import run_planning

    os.environ.update(AZURE_API_KEY="bench-key", AZURE_API_BASE=server.url, AZURE_API_VERSION="2024-10-21")
    with tempfile.TemporaryDirectory() as d:
        spec = _spec(Path(d), max_tokens, quota)
        server.reset()
        from datakit.errors import UserError

        stopped = ""
        try:
            s = run_planning(Path(d) / "out", provider="azure", budget_usd=1e6, count=n, spec_path=spec, concurrency=concurrency,
                             progress=False, workers=workers)
        except UserError as e:  # e.g. the circuit breaker after a 429 storm: that is the result
            s, stopped = {"accepted": None}, f"run stopped: {e.what[:90]}"
        st = server.stats()
    times = sorted(st["answer_times"])
    skip = min(concurrency, len(times) // 4)
    rate = (len(times) - 1 - skip) / (times[-1] - times[skip]) if len(times) > skip + 1 else 0.0
    n_429 = st["status_counts"].get("429", 0)
    return {"rate": rate, "answers": len(times), "n_429": n_429, "share_429": n_429 / max(1, st["requests"]),
            "tokens_per_answer": st["counted_tokens"] / max(1, len(times)), "accepted": s["accepted"],
            "span_s": times[-1] - times[0] if times else 0.0, "stopped": stopped}


def part_free(args) -> None:
    server = Server(args.latency)
    try:
        print(f"## free: no quota, server latency {args.latency * 1000:.0f} ms, {args.rounds} requests per slot, cpus={os.cpu_count()}, "
              f"load average {os.getloadavg()[0]:.1f}")
        head = f"{'concurrency':>11} {'ideal req/s':>12} {'call req/s':>11} {'ratio':>6} {'cpu ms/req':>11}"
        head += "".join(f" {f'gen w={w} rec/s':>15} {'ratio':>6}" for w in args.workers)
        print(head)
        for c in args.concurrency:
            ideal = c / args.latency
            n = c * args.rounds
            calls, cpu_ms = bench_calls(server.url, c, n)
            line = f"{c:>11} {ideal:>12.1f} {calls:>11.1f} {calls / ideal:>6.2f} {cpu_ms:>11.1f}"
            for w in args.workers:
                g = bench_generator(server, c, n, w)
                line += f" {g['rate']:>15.1f} {g['rate'] / ideal:>6.2f}"
            print(line, flush=True)
        print("goal: generator >= 0.8x of ideal at concurrency 32; one process cannot beat 1000 / (cpu ms/req) requests/s per core")
    finally:
        server.close()


def part_quota(args) -> None:
    server = Server(args.latency, rpm=args.rpm, tpm=args.tpm)
    try:
        print(f"## quota: server {args.rpm:g} RPM, {args.tpm:g} TPM (prompt + max_tokens counted at arrival, 10 s buckets), "
              f"latency {args.latency * 1000:.0f} ms, concurrency 32, max_tokens {args.max_tokens}, load average {os.getloadavg()[0]:.1f}")
        print(f"{'client quota':>30} {'answers':>8} {'span s':>7} {'binding req/s':>14} {'answers/s':>10} {'ratio':>6} {'429s':>6} {'429 %':>6}")
        # the binding quota depends on the tokens the server counts per request: measure it with a short probe first
        probe = bench_generator(server, 4, 8, 1, args.max_tokens, {"rpm": args.rpm, "tpm": args.tpm})
        binding = min(args.rpm, args.tpm / probe["tokens_per_answer"]) / 60
        time.sleep(12)  # let the server's buckets refill
        n = int(binding * args.duration)
        from datakit.synth import planning_spec

        with_quota = planning_spec.ProviderProfile.quota
        cases = ((f"rpm={args.rpm:g} tpm={args.tpm:g} in profile", {"rpm": args.rpm, "tpm": args.tpm}, with_quota),
                 ("none (x-ratelimit-* headers)", None, with_quota),
                 ("off (Retry-After only; before)", None, lambda self, folder, model=None: None))
        for label, quota, quota_fn in cases:
            planning_spec.ProviderProfile.quota = quota_fn  # "off": no Quota object, as before this benchmark existed
            try:
                g = bench_generator(server, 32, n, 1, args.max_tokens, quota)
            finally:
                planning_spec.ProviderProfile.quota = with_quota
            print(f"{label:>30} {g['answers']:>8} {g['span_s']:>7.1f} {binding:>14.2f} {g['rate']:>10.2f} {g['rate'] / binding:>6.2f} "
                  f"{g['n_429']:>6} {100 * g['share_429']:>6.2f}  {g['stopped']}", flush=True)
            time.sleep(12)
        print(f"tokens counted per request: {probe['tokens_per_answer']:.0f}; goal: >= 0.9x of the binding quota with < 1 % 429s")
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["free", "quota", "both"], default="both")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=8, help="free: requests per concurrency slot")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="free: worker processes of the generator")
    parser.add_argument("--rpm", type=float, default=600)
    parser.add_argument("--tpm", type=float, default=200_000)
    parser.add_argument("--max-tokens", type=int, default=150, help="quota: max_tokens per request (counted by the TPM quota)")
    parser.add_argument("--duration", type=float, default=75, help="quota: seconds of generation per case")
    args = parser.parse_args()
    if args.part in ("free", "both"):
        part_free(args)
    if args.part in ("quota", "both"):
        part_quota(args)


if __name__ == "__main__":
    main()
