"""Build throughput (tokens/s) of `datakit mix build` vs raw HF `tokenizers` encode_batch, same documents, same run.

    python benchmarks/bench_build.py [--mb 50] [--workers 2]

Corpus: Python's own standard library sources (cycled, each copy a distinct document) as jsonl.gz files.
Tokenizer: a byte-level BPE trained by datakit on the first 8 MB (vocab 32,768; smaller than the model's
65,536 to keep the benchmark's setup short; encoding speed barely depends on vocab size).
The build runs first (datatrove forks workers; a Rust tokenizer used in the parent before a fork can hang),
the raw tokenizer second. Goal: build >= 0.7x raw at --workers 2.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sysconfig
import tempfile
import time
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=32768)
    args = ap.parse_args()

    from datakit.mix.build import build_mixture
    from datakit.mix.pipeline import ExecutorOptions
    from datakit.spec import load_spec
    from datakit.tokenizer.train import train_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        texts = make_corpus(tmp / "corpus", args.mb)
        n_bytes = sum(len(t.encode()) for t in texts)
        print(f"corpus: {len(texts):,} documents, {n_bytes / 1e6:.1f} MB")
        # train in a child process so no Rust tokenizer has run in this process before datatrove forks
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        sample = texts[: max(1, len(texts) // 6)]
        p = ctx.Process(target=train_tokenizer, args=(sample, tmp / "tok" / "tokenizer.json", args.vocab), kwargs={"strict": False})
        p.start()
        p.join()
        from datakit.tokenizer.train import tokenizer_vocab_size

        vocab = tokenizer_vocab_size(tmp / "tok" / "tokenizer.json")
        spec_path = tmp / "bench.toml"
        spec_path.write_text(
            f'[mixture]\nname = "bench"\nseq_len = 2048\ntokenizer = "{tmp / "tok" / "tokenizer.json"}"\nvocab_size = {vocab}\n'
            f'output = "{tmp / "mix"}"\nshard_tokens = "50M"\n'
            f'[[source]]\nname = "code"\nuri = "file://{tmp / "corpus"}/*.jsonl.gz"\nformat = "text"\ntokens = "all"\n'
        )
        t0 = time.perf_counter()
        m = build_mixture(load_spec(spec_path), ExecutorOptions(workers=args.workers), progress=False)
        build_s = time.perf_counter() - t0
        build_tps = m.total_tokens / build_s

        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tmp / "tok" / "tokenizer.json"))
        t0 = time.perf_counter()
        n_raw = 0
        for i in range(0, len(texts), 1000):
            n_raw += sum(len(e.ids) for e in tok.encode_batch(texts[i : i + 1000]))
        raw_s = time.perf_counter() - t0
        raw_tps = n_raw / raw_s

    print(f"raw tokenizers encode_batch: {n_raw:,} tokens in {raw_s:.1f} s = {raw_tps / 1e6:.3f} M tokens/s")
    print(
        f"datakit mix build --workers {args.workers}: {m.total_tokens:,} tokens (incl. <s>/</s>) in {build_s:.1f} s "
        f"= {build_tps / 1e6:.3f} M tokens/s (read, format, tokenize, sample, shard, sha256, DuckDB, report)"
    )
    print(f"ratio build / raw: {build_tps / raw_tps:.2f}x (goal >= 0.7x)")


if __name__ == "__main__":
    main()
