"""Throughput of `datakit synth planning` against a local server with a fixed 200 ms latency.

    python benchmarks/bench_synth.py [--latency 0.2] [--rounds 8] [--concurrency 8 32 128]

The server (datakit.synth.testing.server) runs in its own process so it does not share our GIL. For each
concurrency c, the full generator (ledger reserve/settle in SQLite, litellm acompletion, validation,
MinHash dedup, JSONL append) makes c x rounds records; ideal requests/s = c / latency. Goal: >= 0.9.
A second figure isolates the budgeted call (LLMCaller.acall) without the generator around it, with the
client CPU per request: one process cannot exceed 1000 / (cpu ms per request) requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parents[1]


def start_server(latency_s: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "datakit.synth.testing.server", "--latency", str(latency_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    return proc, url


def bench_calls(url: str, concurrency: int, n: int) -> tuple[float, float]:
    """(requests/s, client CPU ms per request) of n budgeted calls with `concurrency` in flight."""
    from datakit.synth.ledger import Ledger
    from datakit.synth.llm import LLMCaller
    from datakit.synth.prices import resolve_price

    with tempfile.TemporaryDirectory() as d:
        caller = LLMCaller("azure/bench", resolve_price("azure/bench", price_model="azure/gpt-4o"), Ledger(d, 1e6),
                           api_key="bench-key", api_base=url, api_version="2024-10-21", timeout_s=30)
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


def bench_generator(url: str, concurrency: int, n: int) -> float:
    """Accepted records/s of run_planning (every record = one request here: the server never fails)."""
    from datakit.synth.planning import run_planning

    os.environ.update(AZURE_API_KEY="bench-key", AZURE_API_BASE=url, AZURE_API_VERSION="2024-10-21")
    with tempfile.TemporaryDirectory() as d:
        spec = Path(d) / "planning.toml"
        text = (REPO / "synth" / "planning.toml").read_text().replace("max_tokens = 4096", "max_tokens = 400")
        spec.write_text(text)
        run_planning(Path(d) / "warm", provider="azure", budget_usd=1e6, count=concurrency, spec_path=spec, concurrency=concurrency, progress=False)
        s = run_planning(Path(d) / "out", provider="azure", budget_usd=1e6, count=n, spec_path=spec, concurrency=concurrency, progress=False)
        return s["accepted"] / s["elapsed_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=8, help="requests per concurrency slot")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 128])
    args = parser.parse_args()
    proc, url = start_server(args.latency)
    try:
        print(f"server latency {args.latency * 1000:.0f} ms, {args.rounds} requests per slot, cpus={os.cpu_count()}")
        print(f"{'concurrency':>11} {'ideal req/s':>12} {'call req/s':>11} {'ratio':>6} {'cpu ms/req':>11} {'generator rec/s':>16} {'ratio':>6}")
        for c in args.concurrency:
            ideal = c / args.latency
            n = c * args.rounds
            calls, cpu_ms = bench_calls(url, c, n)
            gen = bench_generator(url, c, n)
            print(f"{c:>11} {ideal:>12.1f} {calls:>11.1f} {calls / ideal:>6.2f} {cpu_ms:>11.1f} {gen:>16.1f} {gen / ideal:>6.2f}", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
