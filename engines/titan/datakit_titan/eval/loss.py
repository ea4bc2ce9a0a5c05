"""Held-out loss per source and by position: the `heldout` and `longctx` loss parts of `titan eval`.

Reads the build's held-out slice (`<mixture>/heldout`, a Contract 2 mixture of documents never in the
training shards; datakit.mix.heldout) through datakit.contract, verified against its sha256s first.
Every document is scored from its own `<s>` (no packing), cut to the model's trained context.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from datakit.contract import load_manifest, read_shard, verify_mixture
from datakit.errors import UserError
from datakit.eval.longctx import DEFAULT_BUCKETS, bucket_name
from datakit.eval.stats import mean_ci

HELDOUT = "heldout"


def heldout_folder(mixture: Path) -> Path:
    folder = Path(mixture) / HELDOUT
    if not (folder / "manifest.json").is_file():
        raise UserError("the mixture has no held-out slice (built before `heldout_docs` existed, or with heldout_docs = 0)",
                        file=Path(mixture) / "manifest.json", field="mixture.heldout_docs",
                        fix="rebuild it with `datakit mix build <spec>` (heldout_docs defaults to 8 per source), or pass --data <held-out mixture>")
    return folder


def heldout_docs(folder: Path, max_docs: int | None = None) -> tuple[dict[str, list[np.ndarray]], dict]:
    """source -> held-out documents (token arrays), and {sha256 of the manifest's shards, counts}."""
    import hashlib

    folder = Path(folder)
    manifest = load_manifest(folder)
    verify_mixture(folder, manifest=manifest).raise_if_bad()
    docs: dict[str, list[np.ndarray]] = {}
    h = hashlib.sha256()
    for src in manifest.sources:
        for sh in src.shards:
            h.update(sh.sha256.encode())
            toks, ends, _ = read_shard(folder / sh.path, manifest.tokenizer.token_size_bytes)
            starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
            docs.setdefault(src.name, []).extend(np.asarray(toks[a:b], np.int64) for a, b in zip(starts, ends.astype(np.int64)))
        if max_docs is not None:
            docs[src.name] = docs[src.name][:max_docs]
    return docs, {"heldout_sha256": h.hexdigest(), "heldout_tokenizer_sha256": manifest.tokenizer.sha256}


def _summary(per_doc: list[np.ndarray]) -> dict:
    """Token-weighted mean loss and perplexity, with a 95% interval over documents (ratio estimator)."""
    n_tokens = int(sum(len(x) for x in per_doc))
    if n_tokens == 0:
        return {"docs": len(per_doc), "tokens": 0, "loss": None, "ppl": None, "ci95": None}
    loss = float(sum(x.sum() for x in per_doc) / n_tokens)
    # per-document deviation of the ratio estimator sum(nll)/sum(tokens): stderr over documents
    resid = [float(x.sum() - loss * len(x)) for x in per_doc]
    _, lo, hi = mean_ci(resid) if len(per_doc) > 1 else (0.0, float("nan"), float("nan"))
    mean_len = n_tokens / len(per_doc)
    ci = [loss + lo / mean_len, loss + hi / mean_len] if not math.isnan(lo) else None
    return {"docs": len(per_doc), "tokens": n_tokens, "loss": loss, "ppl": math.exp(loss), "ci95": ci}


def heldout_loss(model, folder: Path, max_docs: int | None = None) -> dict:
    """Loss / perplexity per source and overall on the held-out slice."""
    docs, hashes = heldout_docs(folder, max_docs)
    if model.hashes.get("tokenizer_sha256") and hashes["heldout_tokenizer_sha256"] != model.hashes["tokenizer_sha256"]:
        raise UserError("the held-out data was tokenized with another tokenizer than the model's (sha256 differs)", file=folder,
                        fix="evaluate on the held-out slice of the mixture this model trained on")
    per_source, everything = {}, []
    for src, rows in docs.items():
        nll = model.token_nll(rows)
        per_source[src] = _summary(nll)
        everything += nll
    return {"data": str(folder), **hashes, "context": model.context, "sources": per_source, "all": _summary(everything)}


def position_loss(model, folder: Path, buckets=DEFAULT_BUCKETS, min_tokens: int = 1) -> dict:
    """Loss by position bucket (0-2K, 2-4K, 4-8K by default) over held-out documents, each scored from
    its start up to the model's context; a bucket past every document (or the context) has no tokens."""
    if max(hi for _, hi in buckets) > model.context:
        raise UserError(f"position buckets reach {max(hi for _, hi in buckets):,} tokens but the model was trained at {model.context:,}",
                        field="--buckets", fix=f"evaluate the phase-3 (long-context) model, or pass buckets up to {model.context}")
    docs, hashes = heldout_docs(folder)
    rows = [d for ds in docs.values() for d in ds if len(d) > min_tokens]
    nll = model.token_nll(rows, batch=2)
    out = {}
    for lo, hi in buckets:
        # position p predicts token p+1: bucket [lo, hi) holds predictions made at positions lo..hi-1
        parts = [x[lo:hi] for x in nll if len(x) > lo]
        n = int(sum(len(p) for p in parts))
        out[bucket_name(lo, hi)] = {"docs": len(parts), "tokens": n, "loss": float(sum(p.sum() for p in parts) / n) if n else None}
    return {"data": str(folder), **hashes, "buckets": out, "longest_doc_tokens": int(max((len(r) for r in rows), default=0))}
