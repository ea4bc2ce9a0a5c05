"""Curation throughput: datakit's filter stage, exact dedup and MinHash against datatrove running
the same blocks directly, on >= 20 MB of deterministic text (Python's standard library sources).

    python benchmarks/bench_curate.py            # 20 MB, 1 worker
    python benchmarks/bench_curate.py --mb 5 --workers 2

Prints docs/s and MB/s for each side and datakit's overhead in % (goal: < 10%). datakit's side
includes what it adds: removal records, per-step counts, duplicate-of ids, staging and publishing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import ExactDedupFilter, ExactDedupSignature, ExactFindDedups
from datatrove.pipeline.dedup.minhash import (
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.word_tokenizers import load_word_tokenizer

from datakit.curate import CurateSpec, build_filter_steps, parse_filters, run_curation
from datakit.curate.exact_dedup import exact_config
from datakit.curate.minhash import minhash_config

FILTERS = ["gopher_quality", "gopher_repetition", "fineweb_quality", "c4_quality"]
SOURCES = ("stdlib_a", "stdlib_b")
FILES_PER_SOURCE = 4


def make_corpus(root: Path, target_bytes: int) -> tuple[int, int]:
    """Documents of ~60 lines from the stdlib's .py files; every 20th is repeated verbatim and every
    25th with a few words changed (so both dedups have work). Returns (docs, bytes of text)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    rng = random.Random(0)
    docs, size = [], 0
    for path in sorted(stdlib.rglob("*.py")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        for i in range(0, len(lines), 60):
            text = "\n".join(lines[i:i + 60]).strip()
            if len(text) < 200:
                continue
            docs.append(text)
            size += len(text.encode())
            if len(docs) % 20 == 0:
                docs.append(text)
                size += len(text.encode())
            if len(docs) % 25 == 0:
                words = text.split(" ")
                for _ in range(2):
                    words[rng.randrange(len(words))] = "edited"
                docs.append(" ".join(words))
                size += len(docs[-1].encode())
            if size >= target_bytes:
                break
        if size >= target_bytes:
            break
    n_files = len(SOURCES) * FILES_PER_SOURCE
    for k in range(n_files):
        src = SOURCES[k % len(SOURCES)]
        folder = root / src
        folder.mkdir(parents=True, exist_ok=True)
        with gzip.open(folder / f"{k:05d}.jsonl.gz", "wt", compresslevel=1) as f:
            for i in range(k, len(docs), n_files):
                f.write(json.dumps({"id": f"{src}/{i:07d}", "text": docs[i], "metadata": {"_source": src}}) + "\n")
    return len(docs), size


REPEAT = 1


def timed(fn) -> float:
    """Best of REPEAT runs (the machine is shared; the minimum is the least disturbed run)."""
    best = float("inf")
    for _ in range(REPEAT):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(pipeline, tasks, workers, logs):
    shutil.rmtree(logs, ignore_errors=True)  # a repeat must not skip completed tasks
    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=min(workers, tasks), logging_dir=str(logs)).run()


def fresh(*paths):
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)


def reader(inp: Path) -> JsonlReader:
    return JsonlReader(str(inp), glob_pattern="*/*.jsonl.gz", add_file_path=False)


def train_tokenizer(inp: Path, out: Path) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    texts = []
    with gzip.open(sorted(inp.glob("*/*.jsonl.gz"))[0], "rt") as f:
        for line, _ in zip(f, range(2000)):
            texts.append(json.loads(line)["text"])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=8192, show_progress=False))
    tok.save(str(out))
    return str(out)


def paired_filters(inp: Path, tmp: Path, rounds: int, n_docs: int = 1500) -> None:
    """Same filters in one process, no executor, plain and wrapped alternately on the same documents:
    on a shared machine this isolates what datakit's wrapping (counting, removal records) costs."""
    from datatrove.data import Document

    docs = []
    for path in sorted(inp.glob("*/*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                d = json.loads(line)
                docs.append((d["id"], d["text"], d["metadata"]))
    docs = docs[:n_docs]
    size_mb = sum(len(t.encode()) for _, t, _ in docs) / 1e6
    specs = parse_filters(FILTERS, file="bench", source="stdlib")

    def consume(steps):
        data = (Document(text=t, id=i, metadata=dict(m)) for i, t, m in docs)
        for step in steps:
            data = step.run(data, 0, 1)
        return sum(1 for _ in data)

    best = {"plain": float("inf"), "datakit": float("inf")}
    for r in range(rounds):
        for side in ("plain", "datakit") if r % 2 == 0 else ("datakit", "plain"):
            if side == "plain":
                steps = [GopherQualityFilter(), GopherRepetitionFilter(), FineWebQualityFilter(), C4QualityFilter()]
            else:
                fresh(tmp / "p_rec")
                steps = build_filter_steps(specs, source="stdlib", file="bench", columns=None,
                                           records_dir=tmp / "p_rec", tokenizer_path=None)
            best[side] = min(best[side], timed(lambda: consume(steps)))
    p, o = best["plain"], best["datakit"]
    print(f"{'filters, paired in-process':<28} datatrove {len(docs) / p:9.0f} docs/s {size_mb / p:6.2f} MB/s "
          f"({p:6.1f} s) | datakit {len(docs) / o:9.0f} docs/s {size_mb / o:6.2f} MB/s ({o:6.1f} s) | "
          f"overhead {100 * (o - p) / p:+.1f}%  [{len(docs)} docs, {size_mb:.1f} MB, best of {rounds}]", flush=True)
    # wall-clock differences on a shared machine are noisy; the profiler says what our code costs
    import cProfile
    import pstats

    fresh(tmp / "p_rec")
    steps = build_filter_steps(specs, source="stdlib", file="bench", columns=None, records_dir=tmp / "p_rec",
                               tokenizer_path=None)
    prof = cProfile.Profile()
    prof.runcall(consume, steps)
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())
    ours = sum(v[2] for k, v in stats.items()
               if "datakit" in k[0] or k[0].endswith(("disk_base.py", "writers/jsonl.py")))
    print(f"{'filters, profiled':<28} datakit's own code (wrapping, counts, removal records): {ours:.2f} s of "
          f"{total:.2f} s profiled = {100 * ours / total:.2f}% of the filter stage", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=20.0, help="MB of text to generate (default 20)")
    ap.add_argument("--workers", type=int, default=1, help="parallel processes for both sides (default 1)")
    ap.add_argument("--only", choices=["filters", "exact", "minhash", "paired"], default=None)
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best is kept (default 1)")
    args = ap.parse_args()
    global REPEAT
    REPEAT = args.repeat
    logging.disable(logging.INFO)
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    tmp = Path(tempfile.mkdtemp(prefix="bench_curate_"))
    inp = tmp / "in"
    n_docs, n_bytes = make_corpus(inp, int(args.mb * 1e6))
    tasks, W = len(SOURCES) * FILES_PER_SOURCE, args.workers
    mb = n_bytes / 1e6
    print(f"corpus: {n_docs} docs, {mb:.1f} MB of text, {tasks} files/tasks, workers={W}")
    load_word_tokenizer("en").word_tokenize("warm up spacy")  # the import is a one-off cost
    tok = train_tokenizer(inp, tmp / "tokenizer.json")
    results = []

    def report(name, plain_s, ours_s):
        over = 100 * (ours_s - plain_s) / plain_s
        results.append((name, plain_s, ours_s, over))
        print(f"{name:<28} datatrove {n_docs / plain_s:9.0f} docs/s {mb / plain_s:6.2f} MB/s ({plain_s:6.1f} s) | "
              f"datakit {n_docs / ours_s:9.0f} docs/s {mb / ours_s:6.2f} MB/s ({ours_s:6.1f} s) | overhead {over:+.1f}%",
              flush=True)

    if args.only in (None, "filters"):
        plain = timed(lambda: run([reader(inp), GopherQualityFilter(), GopherRepetitionFilter(), FineWebQualityFilter(),
                                   C4QualityFilter()], tasks, W, tmp / "f_plain"))
        specs = parse_filters(FILTERS, file="bench", source="stdlib")
        ours = timed(lambda: run([reader(inp), *build_filter_steps(specs, source="stdlib", file="bench", columns=None,
                                                                   records_dir=tmp / "f_rec", tokenizer_path=None)],
                                 tasks, W, tmp / "f_ours"))
        report("filters (4 heuristics)", plain, ours)
        ours_tok = timed(lambda: run([reader(inp), *build_filter_steps(specs, source="stdlib", file="bench", columns=None,
                                                                       records_dir=tmp / "f_rec2", tokenizer_path=tok)],
                                     tasks, W, tmp / "f_ours_tok"))
        report("filters + token counting", plain, ours_tok)

    if args.only in (None, "paired"):
        paired_filters(inp, tmp, rounds=max(3, REPEAT))

    inputs = {s: inp / s for s in SOURCES}
    if args.only in (None, "exact"):
        cfg = exact_config()
        d = tmp / "x_plain"

        def plain_exact():
            fresh(d)
            run([reader(inp), ExactDedupSignature(str(d / "sigs"), config=cfg)], tasks, W, d / "l1")
            run([ExactFindDedups(str(d / "sigs"), str(d / "dups"), config=cfg)], 1, 1, d / "l2")
            run([reader(inp), ExactDedupFilter(str(d / "dups"), config=cfg),
                 JsonlWriter(str(d / "out"), output_filename="${_source}/${rank}.jsonl.gz")], tasks, W, d / "l3")

        plain = timed(plain_exact)
        spec = CurateSpec.from_toml({"dedup": {"exact": True}}, file="bench")
        ours = timed(lambda: fresh(tmp / "x_work", tmp / "x_rec") or run_curation(
                                          spec, inputs=inputs, outputs={s: tmp / "x_out" / s for s in SOURCES},
                                          work_dir=tmp / "x_work", records_dir=tmp / "x_rec", tokenizer_path=None,
                                          workers=W, tasks=tasks, file="bench"))
        report("exact dedup", plain, ours)

    if args.only in (None, "minhash"):
        spec = CurateSpec.from_toml({"dedup": {"exact": False, "minhash": {"threshold": 0.8}}}, file="bench")
        cfg = minhash_config(spec.dedup.minhash)
        d = tmp / "m_plain"

        def plain_minhash():
            fresh(d)
            run([reader(inp), MinhashDedupSignature(str(d / "sigs"), config=cfg, language="en")], tasks, W, d / "l1")
            run([MinhashDedupBuckets(str(d / "sigs"), str(d / "buckets"), config=cfg)], cfg.num_buckets, W, d / "l2")
            run([MinhashDedupCluster(str(d / "buckets"), str(d / "remove"), config=cfg)], 1, 1, d / "l3")
            run([reader(inp), MinhashDedupFilter(str(d / "remove")),
                 JsonlWriter(str(d / "out"), output_filename="${_source}/${rank}.jsonl.gz")], tasks, W, d / "l4")

        plain = timed(plain_minhash)
        ours = timed(lambda: fresh(tmp / "m_work", tmp / "m_rec") or run_curation(
                                          spec, inputs=inputs, outputs={s: tmp / "m_out" / s for s in SOURCES},
                                          work_dir=tmp / "m_work", records_dir=tmp / "m_rec", tokenizer_path=None,
                                          workers=W, tasks=tasks, seed=0, file="bench"))
        report("minhash dedup", plain, ours)

    print("\nsummary (overhead of datakit over plain datatrove):")
    for name, p, o, over in results:
        print(f"  {name:<28} {over:+6.1f}%   ({p:.1f} s -> {o:.1f} s)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
