"""Fixtures: a small but valid built mixture (Contract 2), written directly with numpy.

Every source draws its body tokens from its own id range, so any token tells which source it
came from; every document is `<s> body </s>` (bos=1, eos=2, pad=0) of a random length.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


from datakit.accounting.db import write_accounting_from_shards
from datakit.contract import Manifest, Shard, SourceEntry, TokenizerInfo, sha256_file, write_manifest

VOCAB = 512
# name -> (n_docs, first body id, last body id + 1, docs per shard)
SOURCES = {"web": (300, 10, 170, 120), "math": (160, 170, 340, 100), "code": (80, 340, 512, 80)}


def write_mixture(folder: Path, sources=SOURCES, *, seed: int = 0, min_len: int = 3, max_len: int = 200, loss_mask: bool = False) -> Path:
    """Write a complete mixture folder (shards + manifest) and return it."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (n_docs, lo, hi, per_shard) in sources.items():
        shards, written = [], 0
        for k, first in enumerate(range(0, n_docs, per_shard)):
            docs = [
                np.concatenate([[1], rng.integers(lo, hi, size=int(rng.integers(min_len, max_len)) - 2), [2]]).astype("<u2")
                for _ in range(min(per_shard, n_docs - first))
            ]
            path = folder / "tokens" / name / f"{k:05d}.ds"
            path.parent.mkdir(parents=True, exist_ok=True)
            tokens = np.concatenate(docs)
            tokens.tofile(path)
            np.cumsum([len(d) for d in docs]).astype("<u8").tofile(str(path) + ".index")
            loss_sha = None
            if loss_mask:  # loss on the second half of every document only
                mask = np.concatenate([(np.arange(len(d)) >= len(d) // 2).astype(np.uint8) for d in docs])
                mask.tofile(str(path) + ".loss")
                loss_sha = sha256_file(str(path) + ".loss")
            shards.append(
                Shard(
                    path=str(path.relative_to(folder)),
                    size_bytes=path.stat().st_size,
                    sha256=sha256_file(path),
                    n_tokens=len(tokens),
                    n_docs=len(docs),
                    index_sha256=sha256_file(str(path) + ".index"),
                    loss_sha256=loss_sha,
                )
            )
            written += len(tokens)
        entries.append(
            SourceEntry(
                name=name, uri=f"file://{name}", format="text", docs_available=n_docs, tokens_available=written,
                tokens_target=written, tokens_written=written, docs_written=n_docs, epochs=1.0, weight=0.0, shards=shards,
            )
        )
    total = sum(e.tokens_written for e in entries)
    for e in entries:
        e.weight = e.tokens_written / total
    manifest = Manifest(
        name="fixture", seq_len=64, seed=seed, spec={"mixture": {"name": "fixture"}}, spec_sha256="0" * 64,
        tokenizer=TokenizerInfo(path="tokenizer.json", sha256="0" * 64, vocab_size=VOCAB),
        sources=entries, total_tokens=total, total_docs=sum(e.docs_written for e in entries), datakit_version="test",
    )
    write_accounting_from_shards(folder, manifest)
    write_manifest(folder, manifest)
    return folder


def source_of(token: int) -> str | None:
    for name, (_, lo, hi, _) in SOURCES.items():
        if lo <= token < hi:
            return name
    return None


def phase_file(tmp_path: Path, mixture: Path, **over) -> Path:
    fields = {"model": '"tiny"', "init_from": '""', "tokens": "4096", "per_gpu": "4", "optimizer": '"adamw"', "gpu": '""', "extra": ""}
    fields.update(over)
    path = tmp_path / "phase.toml"
    path.write_text(
        f"""
[phase]
name = "t"
mixture = "{mixture}"
output = "{tmp_path / 'out'}"
model = {fields['model']}
tokens = {fields['tokens']}
init_from = {fields['init_from']}
[[stage]]
seq_len = 64
[batch]
per_gpu = {fields['per_gpu']}
grad_accum = 2
[optimizer]
name = {fields['optimizer']}
warmup_steps = 1
[parallel]
gpu = {fields['gpu']}
{fields['extra']}
"""
    )
    return path


def tiny_titan(vocab: int, seed: int = 0, *, cpu_attention: bool = False):
    """The `tiny` preset's TorchTitan model, initialised from `seed` on CPU (cpu_attention: the CPU smoke
    patches first, dense block-causal SDPA in place of FlexAttention)."""
    import torch

    from datakit_titan.presets import PRESETS
    from datakit_titan.spec import model_config

    if cpu_attention:
        from datakit_titan import cpu

        cpu.enable()
    torch.manual_seed(seed)
    with torch.device("meta"):
        model = model_config(PRESETS["tiny"], vocab).build()
    model.to_empty(device="cpu")
    with torch.no_grad():
        model.init_weights(buffer_device=None)
    return model


def tb_scalars(output: Path, tag: str) -> dict[int, float]:
    """Step -> value of a scalar from a run's TensorBoard event files (later runs win on a repeated step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = {}
    for events in sorted(output.glob("tb/**/events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        acc = EventAccumulator(str(events))
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            out.update({e.step: e.value for e in acc.Scalars(tag)})
    return out
