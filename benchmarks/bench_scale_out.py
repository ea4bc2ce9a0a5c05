"""Throughput as work grows: `datakit mix build` at 1, 2 and 4 datatrove tasks at once (local and Ray executors),
and the cost of the build and of python-edu hydration at x1, x2 and x4 input.

    python benchmarks/bench_scale_out.py [--mb 8] [--files 8] [--blobs 400] [--executors local,ray]

Corpus: Python's standard library sources as jsonl.gz (bench_build.make_corpus), split into --files files, so
every stage has --files datatrove tasks; `--workers N` lets N of them run at once. The tokenizer is trained
once (vocab 8,192, to keep the benchmark short; bench_build measures the plan's 65,536). Every build of the
same input is checked to write the same shard bytes as the first one (the executor and N do not change them).
Ray: a private local cluster (RAY_ADDRESS=local, started by the build and shut down after it).
Hydration: --blobs gzip-compressed files served by a real local S3 server (moto) and fetched by datakit's
BlobStore.fetch_many (16 threads), no cache, the way a python-edu build hydrates its rows.
Scaling ratio = tokens/s at N / tokens/s at 1. The machine's CPU count bounds it: on 2 CPUs, N=4 cannot beat
N=2, and other work on the machine shows up in the figures (the load average is printed).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import multiprocessing as mp
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_build import make_corpus  # noqa: E402


def write_spec(tmp: Path, corpus: Path, tokenizer: Path, vocab: int, out: Path) -> Path:
    spec = tmp / f"{out.name}.toml"
    spec.write_text(
        f'[mixture]\nname = "scale"\nseq_len = 2048\ntokenizer = "{tokenizer}"\nvocab_size = {vocab}\n'
        f'output = "{out}"\nshard_tokens = "50M"\n'
        f'[[source]]\nname = "code"\nuri = "file://{corpus}/*.jsonl.gz"\nformat = "text"\ntokens = "all"\n'
    )
    return spec


def shard_digest(out: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((out / "tokens").rglob("*")):
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def build_once(spec: Path, executor: str, workers: int) -> tuple[int, float]:
    """(tokens, wall s) of one fresh build."""
    from datakit.mix.build import build_mixture
    from datakit.mix.pipeline import ExecutorOptions
    from datakit.spec import load_spec

    s = load_spec(spec)
    shutil.rmtree(s.output, ignore_errors=True)
    if executor == "ray":
        os.environ["RAY_ADDRESS"] = "local"
    t0 = time.perf_counter()
    m = build_mixture(s, ExecutorOptions(kind=executor, workers=workers), progress=False, say=lambda *_: None)
    return m.total_tokens, time.perf_counter() - t0


def _build_child(spec: str, executor: str, workers: int, queue) -> None:
    queue.put(build_once(Path(spec), executor, workers))


def build(spec: Path, executor: str, workers: int) -> tuple[int, float]:
    """A build in a fresh process (no Ray session, tokenizer or datatrove state carried between builds)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_build_child, args=(str(spec), executor, workers, queue))
    p.start()
    out = queue.get()
    p.join()
    if p.exitcode:
        raise SystemExit(f"the {executor} build with {workers} workers failed (exit {p.exitcode})")
    return out


def hydration(n_blobs: int, texts: list[str]) -> tuple[int, float]:
    """(bytes, wall s) to fetch n_blobs gzip blobs from a local S3 server through BlobStore.fetch_many."""
    import boto3
    from moto.server import ThreadedMotoServer

    from datakit.sources.hydrate import BlobStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        s3.create_bucket(Bucket="softwareheritage")
        ids = []
        for i in range(n_blobs + 1):  # one more: a warm-up fetch (connection, event loop) outside the timing
            data = texts[i % len(texts)].encode() + f"\n# blob {i}\n".encode()
            blob_id = hashlib.sha1(data).hexdigest()
            s3.put_object(Bucket="softwareheritage", Key=f"content/{blob_id}", Body=gzip.compress(data, 1), ACL="public-read")
            ids.append(blob_id)
        store = BlobStore("s3://softwareheritage/content/{blob_id}", storage_options={"endpoint_url": url, "skip_instance_cache": True})
        store.fetch(ids.pop(), "utf-8")
        t0 = time.perf_counter()
        n_bytes = sum(len(t.encode()) for t in store.fetch_many((i, "utf-8") for i in ids) if t is not None)
        return n_bytes, time.perf_counter() - t0
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=8.0, help="corpus size at x1")
    ap.add_argument("--files", type=int, default=8, help="input files = datatrove tasks per stage")
    ap.add_argument("--workers", default="1,2,4", help="tasks at once to measure")
    ap.add_argument("--executors", default="local,ray")
    ap.add_argument("--blobs", type=int, default=400, help="hydrated blobs at x1")
    ap.add_argument("--vocab", type=int, default=8192)
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    executors = args.executors.split(",")

    from datakit.tokenizer.train import tokenizer_vocab_size, train_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpora = {}
        for x in (1, 2, 4):
            texts = make_corpus(tmp / f"corpus-x{x}", args.mb * x, n_files=args.files * x)
            corpora[x] = (tmp / f"corpus-x{x}", texts)
        texts1 = corpora[1][1]
        print(f"corpus x1: {len(texts1):,} documents, {sum(len(t.encode()) for t in texts1) / 1e6:.1f} MB in {args.files} files "
              f"({args.files} datatrove tasks per stage); x2 and x4 have 2x and 4x the files")
        tok = tmp / "tok" / "tokenizer.json"
        ctx = mp.get_context("spawn")  # no Rust tokenizer in this process before datatrove forks
        p = ctx.Process(target=train_tokenizer, args=(list(dict.fromkeys(t.split("\n", 1)[1] for t in texts1)), tok, args.vocab),
                        kwargs={"strict": False, "min_frequency": 1})
        p.start()
        p.join()
        vocab = tokenizer_vocab_size(tok)

        print(f"\n1. tasks at once (x1 input, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
        print(f"  {'executor':8} {'workers':>7} {'tokens':>12} {'wall s':>8} {'M tok/s':>8} {'scaling':>8}  bytes")
        reference = None
        for executor in executors:
            base = None
            for n in counts:
                out = tmp / f"mix-{executor}-{n}"
                tokens, wall = build(write_spec(tmp, corpora[1][0], tok, vocab, out), executor, n)
                digest = shard_digest(out)
                reference = reference or digest
                base = base or tokens / wall
                print(f"  {executor:8} {n:7d} {tokens:12,} {wall:8.1f} {tokens / wall / 1e6:8.3f} {tokens / wall / base:7.2f}x  "
                      + ("same as the first build" if digest == reference else "DIFFERENT SHARD BYTES"))
                shutil.rmtree(out, ignore_errors=True)

        n = max(c for c in counts if c <= (os.cpu_count() or 1))
        print(f"\n2. input size (local, --workers {n})")
        print(f"  {'input':6} {'tokens':>12} {'wall s':>8} {'s per M tok':>11} {'cost vs x1':>10}")
        first = None
        for x in (1, 2, 4):
            out = tmp / f"mix-x{x}"
            tokens, wall = build(write_spec(tmp, corpora[x][0], tok, vocab, out), "local", n)
            first = first or wall
            print(f"  x{x:<5} {tokens:12,} {wall:8.1f} {wall / tokens * 1e6:11.2f} {wall / first:9.2f}x")
            shutil.rmtree(out, ignore_errors=True)

        print("\n3. hydration from a local S3 server (BlobStore.fetch_many, 16 threads, no cache)")
        print(f"  {'input':6} {'blobs':>7} {'MB':>8} {'wall s':>8} {'blobs/s':>8} {'cost vs x1':>10}")
        first = None
        for x in (1, 2, 4):
            n_bytes, wall = hydration(args.blobs * x, texts1)
            first = first or wall
            print(f"  x{x:<5} {args.blobs * x:7,} {n_bytes / 1e6:8.1f} {wall:8.2f} {args.blobs * x / wall:8.0f} {wall / first:9.2f}x")


if __name__ == "__main__":
    main()
