"""Procedural planning speed on one core: records/s per domain and tokens/s of output, plus DPO pairs/s.

    python benchmarks/bench_procedural.py [--n 400] [--difficulty medium]

A record is timed end to end: instance, solve, render, independent check, JSON line. Tokens are an
approximation (regex `\\w+|[^\\w\\s]`, i.e. words and punctuation marks, over problem + thinking + answer),
not a BPE count; BPE tokenizers of this size typically give a similar or somewhat larger count on this text.
Single process, single thread.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from pathlib import Path

from datakit.synth.dpo import make_dpo
from datakit.synth.flaws import domain_flaws, make_flawed
from datakit.synth.procedural import DOMAINS, generate, make_record
from datakit.synth.procedural.common import FlawNotApplicable

TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def bench_domain(domain: str, n: int, difficulty: str) -> dict:
    recs = []
    t0 = time.perf_counter()
    for i in range(n):
        rec = make_record(domain, i, seed=0, difficulty=difficulty)
        json.dumps(rec)
        recs.append(rec)
    dt = time.perf_counter() - t0  # token counting below is not part of the generation time
    n_tokens = sum(len(TOKEN_RE.findall(r["problem"] + "\n" + r["thinking"] + "\n" + r["answer"])) for r in recs)
    return {"records_per_s": n / dt, "tokens_per_s": n_tokens / dt, "tokens_per_record": n_tokens / n}


def bench_flaws(domain: str, n: int, difficulty: str) -> float:
    recs = [make_record(domain, i, seed=1, difficulty=difficulty) for i in range(n)]
    t0, made = time.perf_counter(), 0
    for i, rec in enumerate(recs):
        for flaw in domain_flaws(domain):
            try:
                make_flawed(domain, rec["meta"]["instance"], flaw, random.Random(i))
                made += 1
            except FlawNotApplicable:
                pass
    return made / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=400, help="records per domain")
    ap.add_argument("--difficulty", default="medium")
    args = ap.parse_args()
    print(f"procedural generation, one core, {args.n} records per domain, difficulty {args.difficulty}")
    print("tokens = regex words+punctuation approximation (not BPE)")
    print(f"{'domain':24s} {'records/s':>10s} {'records/min':>12s} {'tokens/s':>10s} {'tok/record':>10s} {'flawed/s':>9s}")
    for domain in DOMAINS:
        r = bench_domain(domain, args.n, args.difficulty)
        f = bench_flaws(domain, max(20, args.n // 4), args.difficulty)
        print(f"{domain:24s} {r['records_per_s']:10.0f} {r['records_per_s'] * 60:12.0f} {r['tokens_per_s']:10.0f} "
              f"{r['tokens_per_record']:10.0f} {f:9.0f}")
    with tempfile.TemporaryDirectory() as tmp:
        n = args.n * len(DOMAINS)
        s = generate(Path(tmp) / "plan", n, seed=0, difficulty=args.difficulty, progress=False)
        print(f"generate() end to end with file writes: {s['records_written']} records in {s['elapsed_s']:.2f} s = "
              f"{s['records_per_s']:.0f} records/s = {s['records_per_s'] * 60:.0f} records/min")
        d = make_dpo(Path(tmp) / "plan", Path(tmp) / "dpo", progress=False)
        print(f"make_dpo() end to end (validate + flaw + check + write): {d['pairs_written']} pairs in {d['elapsed_s']:.2f} s = "
              f"{d['pairs_written'] / d['elapsed_s']:.0f} pairs/s; dropped {d['dropped']} candidates {d['dropped_by_reason']}")


if __name__ == "__main__":
    main()
