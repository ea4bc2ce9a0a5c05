"""Build throughput (tokens/s) of `datakit mix build` vs the fastest raw path of the same tokenizer library.

    python benchmarks/bench_build.py [--mb 50] [--workers 2] [--vocab 65536]

Corpus: Python's own standard library sources (cycled, each copy a distinct document) as jsonl.gz files.
Tokenizer: a byte-level BPE trained by datakit on each stdlib file once (~31 MB; min_frequency 1 so that the
vocabulary reaches the plan's 65,536: the stdlib alone supports ~25k merges at min_frequency 2).
Raw baseline, same documents, same run, same tokenizer and `<s> text </s>` framing: HF `tokenizers`
`encode_batch_fast` (no offsets; the fastest batch path the library has) and, for reference,
`encode_batch`. Both count the same tokens as the build (checked). The build runs first (datatrove forks
workers; a Rust tokenizer used in the parent before a fork can hang), the raw paths second.
Goal: build >= 0.9x raw encode_batch_fast at --workers 2. The profile says where the rest goes: wall
time per build phase, and inside the datatrove stage the time of each pipeline step (summed over tasks).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sysconfig
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path


def make_corpus(folder: Path, target_mb: float, n_files: int = 8) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts)
    texts, size, copy = [], 0, 0
    while size < target_mb * 1e6:
        for p in sources:
            try:
                t = p.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if not t.strip():
                continue
            t = f"# copy {copy}: {p.relative_to(stdlib)}\n{t}"
            texts.append(t)
            size += len(t.encode())
            if size >= target_mb * 1e6:
                break
        copy += 1
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n_files):
        with gzip.open(folder / f"part-{k:03d}.jsonl.gz", "wt", compresslevel=1) as f:
            for i in range(k, len(texts), n_files):
                f.write(json.dumps({"text": texts[i], "id": str(i)}) + "\n")
    return texts


class PhaseTimer:
    """Wall time of the build's phases, by wrapping the functions build_mixture calls (nothing else changes)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._undo: list = []

    def wrap(self, module, name: str, label: str) -> None:
        original = getattr(module, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - t0

        setattr(module, name, timed)
        self._undo.append((module, name, original))

    @contextmanager
    def installed(self):
        import datakit.accounting.db as db
        import datakit.accounting.report as report
        import datakit.mix.build as build

        self.wrap(build, "check_tokenizer", "check tokenizer (sha256)")
        self.wrap(build, "run_stages", "datatrove stage: read, format, doc info, tokenize")
        self.wrap(build, "count_available", "count tokens available (read indexes)")
        self.wrap(build, "make_plan", "plan")
        self.wrap(build, "write_source", "sample + write shards + sha256")
        self.wrap(build, "inputs_fingerprint", "fingerprint input files")
        self.wrap(db, "write_accounting", "DuckDB accounting")
        self.wrap(build, "write_manifest", "manifest.json")
        self.wrap(report, "write_report", "report.md + chart")
        try:
            yield self
        finally:
            for module, name, original in reversed(self._undo):
                setattr(module, name, original)


def step_times(stats_json: Path) -> list[tuple[str, float]]:
    """(step name, seconds summed over tasks) from datatrove's merged stats of a stage."""
    if not stats_json.exists():
        return []
    out = []
    for step in json.loads(stats_json.read_text()):
        t = step.get("time_stats", 0)  # datatrove writes a bare number when there is nothing more to say
        out.append((step["name"], float(t.get("total", 0.0) if isinstance(t, dict) else t)))
    return out


def framed(tokenizer_path: Path):
    """The tokenizer as the build uses it: `<s> text </s>` (datakit.mix.steps.FramedTokenizer)."""
    from tokenizers import Tokenizer, processors

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    return tok


def _raw(tokenizer_path: str, texts: list[str], method: str, queue) -> None:
    tok = framed(Path(tokenizer_path))
    encode = getattr(tok, method)
    t0, cpu0 = time.perf_counter(), time.process_time()
    n = 0
    for i in range(0, len(texts), 1000):
        n += sum(len(e.ids) for e in encode(texts[i : i + 1000]))
    queue.put((n, time.perf_counter() - t0, time.process_time() - cpu0))


def raw(tokenizer_path: Path, texts: list[str], method: str) -> tuple[int, float, float]:
    """(tokens, wall s, CPU s) of the raw path in a fresh process (this one must not run a Rust tokenizer
    before datatrove forks, and a fresh process measures the same way before and after the build)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_raw, args=(str(tokenizer_path), texts, method, queue))
    p.start()
    out = queue.get()
    p.join()
    return out


class TreeCpu:
    """CPU seconds (user + system) of this process and every descendant that lived meanwhile. datatrove's
    workers are forkserver children (not ours to wait for), so they are sampled every 0.1 s while alive."""

    def __init__(self):
        import psutil

        self._me = psutil.Process()
        self._seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            for p in self._me.children(recursive=True):
                try:
                    t = p.cpu_times()
                    self._seen[p.pid] = t.user + t.system
                except Exception:  # noqa: BLE001 - it ended between listing and reading
                    pass

    def __enter__(self) -> "TreeCpu":
        t = self._me.cpu_times()
        self._start = t.user + t.system
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        t = self._me.cpu_times()
        self.seconds = t.user + t.system - self._start + sum(self._seen.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=65536)
    args = ap.parse_args()

    from datakit.mix.build import build_mixture
    from datakit.mix.pipeline import ExecutorOptions
    from datakit.spec import load_spec
    from datakit.tokenizer.train import tokenizer_vocab_size, train_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        texts = make_corpus(tmp / "corpus", args.mb)
        n_bytes = sum(len(t.encode()) for t in texts)
        print(f"corpus: {len(texts):,} documents, {n_bytes / 1e6:.1f} MB")
        # train in a child process so no Rust tokenizer has run in this process before datatrove forks
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        sample = list(dict.fromkeys(t.split("\n", 1)[1] for t in texts))  # each stdlib file once (the corpus repeats)
        t0 = time.perf_counter()
        p = ctx.Process(target=train_tokenizer, args=(sample, tmp / "tok" / "tokenizer.json", args.vocab),
                        kwargs={"strict": False, "min_frequency": 1})
        p.start()
        p.join()
        vocab = tokenizer_vocab_size(tmp / "tok" / "tokenizer.json")
        print(f"tokenizer: vocab {vocab:,} (asked {args.vocab:,}), trained in {time.perf_counter() - t0:.0f} s")
        spec_path = tmp / "bench.toml"
        spec_path.write_text(
            f'[mixture]\nname = "bench"\nseq_len = 2048\ntokenizer = "{tmp / "tok" / "tokenizer.json"}"\nvocab_size = {vocab}\n'
            f'output = "{tmp / "mix"}"\nshard_tokens = "50M"\n'
            f'[[source]]\nname = "code"\nuri = "file://{tmp / "corpus"}/*.jsonl.gz"\nformat = "text"\ntokens = "all"\n'
        )
        tok_path = tmp / "tok" / "tokenizer.json"
        docs = [t.strip() for t in texts]  # what the `text` formatter hands the tokenizer
        # raw before and after the build: on a shared machine the load drifts; the build is compared with both
        n_fast, fast_wall1, fast_cpu1 = raw(tok_path, docs, "encode_batch_fast")
        timer = PhaseTimer()
        with timer.installed():
            t0 = time.perf_counter()
            with TreeCpu() as cpu:
                m = build_mixture(load_spec(spec_path), ExecutorOptions(workers=args.workers), progress=False)
            build_s, build_cpu = time.perf_counter() - t0, cpu.seconds
        steps = step_times(tmp / "mix" / ".work" / "logs" / "tokenize" / "code" / "stats.json")
        _, fast_wall2, fast_cpu2 = raw(tok_path, docs, "encode_batch_fast")
        n_slow, slow_wall, slow_cpu = raw(tok_path, docs, "encode_batch")

    fast_wall, fast_cpu = (fast_wall1 + fast_wall2) / 2, (fast_cpu1 + fast_cpu2) / 2
    fast_tps, slow_tps, build_tps = n_fast / fast_wall, n_slow / slow_wall, m.total_tokens / build_s
    print(f"raw tokenizers encode_batch_fast: {n_fast:,} tokens, {fast_tps / 1e6:.3f} M tokens/s "
          f"(before the build {n_fast / fast_wall1 / 1e6:.3f}, after {n_fast / fast_wall2 / 1e6:.3f}), "
          f"{fast_cpu / n_fast * 1e6:.2f} CPU s per M tokens   <- the fastest raw path")
    print(f"raw tokenizers encode_batch:      {n_slow:,} tokens, {slow_tps / 1e6:.3f} M tokens/s, "
          f"{slow_cpu / n_slow * 1e6:.2f} CPU s per M tokens   (with offsets)")
    print(f"datakit mix build --workers {args.workers}: {m.total_tokens:,} tokens in {build_s:.1f} s = {build_tps / 1e6:.3f} M tokens/s, "
          f"{build_cpu / m.total_tokens * 1e6:.2f} CPU s per M tokens (read, format, tokenize, sample, shard, sha256, DuckDB, report)")
    same = "same tokens" if n_fast == m.total_tokens else f"TOKEN COUNTS DIFFER ({n_fast:,} raw)"
    print(f"ratio build / encode_batch_fast: {build_tps / fast_tps:.2f}x wall-clock (goal >= 0.9x; {same}), "
          f"{fast_cpu / n_fast / (build_cpu / m.total_tokens):.2f}x in CPU per token; build / encode_batch: {build_tps / slow_tps:.2f}x wall-clock")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (wall-clock ratios move with other work; CPU ratios less)")
    print("\nwhere the build's time goes (wall s, share of the build):")
    for label, s in sorted(timer.seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {s:7.2f} s {100 * s / build_s:5.1f} %  {label}")
    rest = build_s - sum(timer.seconds.values())
    print(f"  {rest:7.2f} s {100 * rest / build_s:5.1f} %  other (spec checks, planning, startup)")
    if steps:
        print(f"inside the datatrove stage (seconds summed over tasks, {args.workers} workers in parallel):")
        for name, s in steps:
            print(f"  {s:7.2f} s  {name}")
        print(f"  (raw encode_batch_fast needed {fast_wall:.2f} s wall, {fast_cpu:.2f} CPU s for the same tokens)")


if __name__ == "__main__":
    main()
