"""A small trained model for the export tests and the quant-report benchmark, made from real parts:

- a corpus of the embedded samples' prose (fineweb-edu), Python (Software Heritage blobs of
  python-edu) and verified procedural planning records rendered with their tags;
- datakit's byte-level BPE tokenizer (Llama 3 regex, <pad>/<s>/</s> = 0/1/2, planning tags) trained on it;
- a training mixture and a held-out mixture (Contract 2: `<s> text </s>` shards + manifest with the
  tokenizer's sha256), documents split 90/10;
- the `small` preset (dims multiples of 256, so llama.cpp's k-quants apply) trained with a real
  `titan run --device cpu`.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from datakit.accounting.db import write_accounting_from_shards
from datakit.contract import Manifest, Shard, SourceEntry, TokenizerInfo, sha256_file, write_manifest

SAMPLES = Path(__file__).resolve().parents[3] / "datakit" / "samples"
VOCAB = 4096
SEQ = 256


def corpus(n_planning: int = 240, tmp: Path | None = None) -> dict[str, list[str]]:
    """source -> documents (prose, code, planning), deterministic."""
    from datakit.synth.procedural.generate import generate
    from datakit.synth.validate import render

    web = [t for t in pq.read_table(SAMPLES / "HuggingFaceTB__smollm-corpus/fineweb-edu-dedup/train-00000.parquet").column("text").to_pylist()]
    code = [gzip.decompress(p.read_bytes()).decode("utf-8", "replace") for p in sorted((SAMPLES / "softwareheritage/content").iterdir())]
    generate(tmp, count=n_planning, seed=3, difficulty="easy", progress=False)
    planning = [render(json.loads(line)) for f in sorted((tmp / "records").glob("*.jsonl")) for line in f.read_text().splitlines()]
    return {"web": web[:300], "code": code[:200], "planning": planning}


def train_tok(docs: dict[str, list[str]], out: Path) -> Path:
    from datakit.tokenizer.train import train_tokenizer

    texts = [d for src in docs.values() for d in src]
    train_tokenizer(texts, out, VOCAB, strict=False)
    return out


def write_text_mixture(folder: Path, docs: dict[str, list[str]], tokenizer: Path, name: str) -> Path:
    """Tokenize `<s> text </s>` per document into one shard per source and write the manifest."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer))
    entries = []
    for src, texts in docs.items():
        ids = [np.array([1, *tok.encode(t, add_special_tokens=False).ids, 2], dtype="<u2") for t in texts]
        path = folder / "tokens" / src / "00000.ds"
        path.parent.mkdir(parents=True, exist_ok=True)
        tokens = np.concatenate(ids)
        tokens.tofile(path)
        np.cumsum([len(d) for d in ids]).astype("<u8").tofile(str(path) + ".index")
        shard = Shard(path=str(path.relative_to(folder)), size_bytes=path.stat().st_size, sha256=sha256_file(path), n_tokens=len(tokens),
                      n_docs=len(ids), index_sha256=sha256_file(str(path) + ".index"))
        entries.append(SourceEntry(name=src, uri=f"file://{src}", format="text", docs_available=len(ids), tokens_available=len(tokens),
                                   tokens_target=len(tokens), tokens_written=len(tokens), docs_written=len(ids), epochs=1.0, weight=0.0,
                                   shards=[shard]))
    total = sum(e.tokens_written for e in entries)
    for e in entries:
        e.weight = e.tokens_written / total
    manifest = Manifest(
        name=name, seq_len=SEQ, seed=0, spec={"mixture": {"name": name}}, spec_sha256=("%064x" % abs(hash(name)))[:64],
        tokenizer=TokenizerInfo(path=str(tokenizer), sha256=sha256_file(tokenizer), vocab_size=tok.get_vocab_size()),
        sources=entries, total_tokens=total, total_docs=sum(e.docs_written for e in entries), datakit_version="test")
    write_accounting_from_shards(folder, manifest)  # a complete mixture: `datakit verify` checks its accounting too
    write_manifest(folder, manifest)
    return folder


def phase_text(name: str, mixture: Path, output: Path, *, model: str = "small", steps: int = 60, rows: int = 8, lr: float = 3e-3,
               extra: str = "") -> str:
    return f"""
[phase]
name = "{name}"
mixture = "{mixture}"
output = "{output}"
model = "{model}"
tokens = {steps * SEQ * rows}
seed = 11
[[stage]]
seq_len = {SEQ}
[batch]
per_gpu = {rows}
grad_accum = 1
[optimizer]
name = "adamw"
lr = {lr}
weight_decay = 0.0
warmup_steps = 5
[checkpoint]
interval = {max(steps // 2, 1)}
keep_last = 0
[metrics]
log_every = 10
wandb = "off"
tensorboard = false
[parallel]
mixed_precision = "float32"
{extra}
"""


def make_trained(root: Path, *, steps: int = 60, model: str = "small", log: bool = True) -> dict[str, Path]:
    """Corpus -> tokenizer -> train/held-out mixtures -> `titan run` of a phase; returns the paths.
    log: the training output goes to <root>/train.log (False: to this process's stdout)."""
    from datakit_titan.launch import run_phase

    from datakit_titan.export.checkpoint import record_phase

    docs = corpus(tmp=root / "synth")
    tok = train_tok(docs, root / "tokenizer" / "tokenizer.json")
    train = {k: v[: int(len(v) * 0.9)] for k, v in docs.items()}
    held = {k: v[int(len(v) * 0.9):] for k, v in docs.items()}
    mix = write_text_mixture(root / "mix-train", train, tok, "export-train")
    heldout = write_text_mixture(root / "mix-heldout", held, tok, "export-heldout")
    phase = root / "phase.toml"
    phase.write_text(phase_text("pretrain", mix, root / "out", model=model, steps=steps))
    record_phase(phase)
    if log:
        with open(root / "train.log", "w") as f:
            run_phase(phase, device="cpu", stdout=f)
    else:
        run_phase(phase, device="cpu")
    return {"root": root, "tokenizer": tok, "mixture": mix, "heldout": heldout, "phase": phase, "output": root / "out", "docs": docs}
