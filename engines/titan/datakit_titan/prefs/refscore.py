"""Reference log-probs of every DPO pair, computed once, stored next to the data, checked by hash.

DPO compares the policy with a frozen reference (the phase-2 model). Holding both models in memory
at 8192 context doubles the weights and adds a forward per step; like TRL's
`precompute_ref_log_probs`, we run the reference once over all pairs and store, per DPO source,

    <mixture>/refscore/<source>.npz    chosen_logps, rejected_logps (float64, one per pair, summed over
                                       completion tokens), chosen_n_tokens, rejected_n_tokens
    <mixture>/refscore/<source>.json   what they were computed from: checkpoint path, sha256 and step;
                                       tokenizer sha256; mixture spec sha256; the source's data sha256;
                                       RoPE settings; pairs; created. Written last (atomic rename): its
                                       presence means the .npz is complete.

Training refuses (UserError, before any step) reference log-probs that are missing, or that were
computed from another checkpoint, tokenizer, spec, data or RoPE setting than the run uses.
The RoPE settings belong to the identity because the reference is the initial policy *as trained*:
with phase 3's longer-context RoPE, so that at step 0 the policy equals the reference (rewards 0).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from datakit.errors import UserError
from datakit.contract import Manifest, SourceEntry, load_manifest
from datakit.contract.layouts import PAIR_LAYOUT, example_row
from datakit.contract.reader import SourceDocs
from datakit.adapters.losses import sequence_logps, sequence_logps_from_hidden

REFSCORE_DIR = "refscore"
FORMAT = "datakit.refscore/1"

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (input ids [B, T], positions [B, T]) -> logits [B, T, V]


def refscore_files(folder: str | os.PathLike, source: str) -> tuple[Path, Path]:
    d = Path(folder) / REFSCORE_DIR
    return d / f"{source}.npz", d / f"{source}.json"


def source_data_sha256(src: SourceEntry) -> str:
    """One hash for a source's shards: tokens, document index and loss mask of each, in order."""
    h = hashlib.sha256()
    for sh in src.shards:
        h.update(f"{sh.path}:{sh.sha256}:{sh.index_sha256}:{sh.loss_sha256}\n".encode())
    return h.hexdigest()


def checkpoint_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 22) -> str:
    """sha256 of a checkpoint: a file's bytes, or a folder's (DCP `step-N/`) files in name order, each
    with its relative path."""
    p = Path(path)
    h = hashlib.sha256()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    if not files:
        raise UserError("checkpoint is missing or empty", file=p, fix="point at a `step-N` folder of a finished run")
    for f in files:
        h.update(str(f.relative_to(p) if f != p else f.name).encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(chunk_bytes):
                h.update(block)
    return h.hexdigest()


def checkpoint_step(path: str | os.PathLike) -> int | None:
    m = re.search(r"step-(\d+)$", str(Path(path)))
    return int(m.group(1)) if m else None


def expected_reference(checkpoint: str | os.PathLike, rope: dict | None = None) -> dict:
    """What the run's reference must be: the checkpoint it starts from (by sha256) and its RoPE settings."""
    return {"checkpoint": str(checkpoint), "checkpoint_sha256": checkpoint_sha256(checkpoint), "rope": rope or {}}


def titan_forward(model: torch.nn.Module) -> Forward:
    """A TorchTitan decoder as a Forward: block-causal masks from positions (one example per row, the
    padding its own document). With `model._skip_lm_head = True` it returns the final hidden states
    (then pass `lm_head=model.lm_head` to `compute_refscores`)."""

    def forward(inputs: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return model(inputs, attention_masks=model.get_attention_masks(positions=positions), positions=positions)

    return forward


def _pair_rows(src: SourceDocs, pair: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(tokens, loss mask) of the chosen and the rejected example of a pair."""
    return [(np.asarray(t), np.asarray(lm) if lm is not None else np.ones(len(t), np.uint8)) for t, lm in (src.doc(2 * pair + j) for j in (0, 1))]


def compute_refscores(
    forward: Forward,
    folder: str | os.PathLike,
    *,
    checkpoint: str | os.PathLike | None,
    checkpoint_sha: str | None = None,
    rope: dict | None = None,
    batch_pairs: int = 4,
    device: str | torch.device = "cpu",
    manifest: Manifest | None = None,
    progress: bool = True,
    lm_head: torch.nn.Module | None = None,
    save_every_s: float = 300.0,
) -> dict[str, dict]:
    """Run `forward` (the reference model) once over every DPO pair of the mixture and store the
    sequence log-probs of chosen and rejected completions under `<folder>/refscore/`.

    checkpoint: where the reference weights came from (recorded; hashed unless checkpoint_sha is given;
    None for an in-memory model, recorded as such). rope: the RoPE settings the model ran with.
    batch_pairs: pairs per forward (2 rows each). lm_head: when given, `forward` returns hidden states and
    only completion positions are projected (as in training: at 8192 context the full logits of a batch
    would not fit). Returns, per source, the metadata written.

    Resumable: progress is saved to `<source>.partial.npz` every `save_every_s` seconds, and a rerun with
    the same checkpoint, tokenizer, data and RoPE continues from there; a source already scored with them
    is skipped.
    """
    folder = Path(folder)
    manifest = manifest or load_manifest(folder)
    sha = checkpoint_sha or (checkpoint_sha256(checkpoint) if checkpoint is not None else None)
    written = {}
    for i, entry in enumerate(manifest.sources):
        if entry.layout != PAIR_LAYOUT or not entry.shards:
            continue
        src = SourceDocs(folder, entry, manifest.tokenizer.token_size_bytes)
        n_pairs = src.n_docs // 2
        identity = {"checkpoint_sha256": sha, "tokenizer_sha256": manifest.tokenizer.sha256, "spec_sha256": manifest.spec_sha256,
                    "data_sha256": source_data_sha256(entry), "rope": rope or {}, "n_pairs": n_pairs}
        npz, meta_path = refscore_files(folder, entry.name)
        if meta_path.exists() and npz.exists():
            old = json.loads(meta_path.read_text())
            if all(old.get(k) == v for k, v in identity.items()):
                written[entry.name] = old  # already scored with this checkpoint, tokenizer, data and RoPE
                continue
        npz.parent.mkdir(parents=True, exist_ok=True)
        partial = npz.with_name(f"{entry.name}.partial.npz")
        key = json.dumps(identity, sort_keys=True)
        out = {k: np.zeros(n_pairs, np.float64) for k in ("chosen_logps", "rejected_logps")}
        counts = {k: np.zeros(n_pairs, np.int64) for k in ("chosen_n_tokens", "rejected_n_tokens")}
        start = 0
        if partial.exists():
            with np.load(partial) as z:
                if str(z["identity"]) == key:  # the same reference and data: continue where it stopped
                    start = int(z["done"])
                    out = {k: np.array(z[k]) for k in out}
                    counts = {k: np.array(z[k]) for k in counts}

        def save_partial(done: int) -> None:
            tmp = partial.with_name(f"{entry.name}.partial.tmp.npz")
            np.savez(tmp, identity=key, done=done, **out, **counts)
            os.replace(tmp, partial)

        bar = tqdm(total=n_pairs, initial=start, desc=f"refscore {entry.name}", unit="pair", disable=not progress)
        last_save = time.monotonic()
        with torch.no_grad():
            for a in range(start, n_pairs, batch_pairs):
                pairs = range(a, min(a + batch_pairs, n_pairs))
                docs = [d for p in pairs for d in _pair_rows(src, p)]
                width = max(len(t) for t, _ in docs) - 1
                rows = [example_row(t, lm, width, manifest.tokenizer.pad_id) for t, lm in docs]
                inputs, labels, positions = (torch.from_numpy(np.stack(x)).to(device) for x in zip(*rows))
                out_bt = forward(inputs, positions)
                sums, n = sequence_logps_from_hidden(out_bt, lm_head, labels) if lm_head is not None else sequence_logps(out_bt, labels)
                sums, n = sums.double().cpu().numpy(), n.cpu().numpy()
                idx = np.fromiter(pairs, np.int64)
                out["chosen_logps"][idx], out["rejected_logps"][idx] = sums[0::2], sums[1::2]
                counts["chosen_n_tokens"][idx], counts["rejected_n_tokens"][idx] = n[0::2], n[1::2]
                bar.update(len(idx))
                if time.monotonic() - last_save >= save_every_s:
                    save_partial(int(idx[-1]) + 1)
                    last_save = time.monotonic()
        bar.close()
        meta_path.unlink(missing_ok=True)  # the old metadata no longer describes what is being written
        tmp = npz.with_name(npz.stem + ".tmp.npz")
        np.savez(tmp, **out, **counts)
        os.replace(tmp, npz)
        meta = {
            "format": FORMAT,
            "source": entry.name,
            "checkpoint": str(checkpoint) if checkpoint is not None else None,
            "checkpoint_step": checkpoint_step(checkpoint) if checkpoint is not None else None,
            **identity,
            "npz_sha256": hashlib.sha256(npz.read_bytes()).hexdigest(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        tmp = meta_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, meta_path)
        partial.unlink(missing_ok=True)
        written[entry.name] = meta
    return written


def load_refscores(
    folder: str | os.PathLike,
    manifest: Manifest,
    source: str,
    *,
    reference: dict | None = None,
    phase_file: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(chosen_logps, rejected_logps) of a DPO source, after checking they belong to this mixture's
    data and tokenizer and (when `reference` is given, see `expected_reference`) to this checkpoint
    and RoPE setting. Every mismatch is a UserError that says how to recompute them."""
    npz, meta_path = refscore_files(folder, source)
    rerun = f"run `titan refscore {phase_file or '<phase.toml>'}` (once, before training)"
    if not meta_path.exists() or not npz.exists():
        raise UserError(f"no reference log-probs for DPO source {source!r}", file=meta_path, field="phase.loss", fix=rerun)
    meta = json.loads(meta_path.read_text())
    entry = manifest.source(source)
    checks = [
        ("tokenizer_sha256", manifest.tokenizer.sha256, "another tokenizer"),
        ("spec_sha256", manifest.spec_sha256, "another mixture spec"),
        ("data_sha256", source_data_sha256(entry), "other data (the mixture was rebuilt)"),
        ("n_pairs", entry.docs_written // 2 if entry.docs_written else meta.get("n_pairs"), "another number of pairs"),
    ]
    if reference is not None:
        checks += [
            ("checkpoint_sha256", reference["checkpoint_sha256"], f"another checkpoint ({meta.get('checkpoint')}, not {reference['checkpoint']})"),
            ("rope", reference.get("rope") or {}, f"other RoPE settings ({meta.get('rope')}, not {reference.get('rope') or {}})"),
        ]
    for key, want, what in checks:
        if meta.get(key) != want:
            raise UserError(f"reference log-probs of {source!r} were computed with {what}", file=meta_path, field=key,
                            fix=f"recompute them: {rerun}")
    if hashlib.sha256(npz.read_bytes()).hexdigest() != meta["npz_sha256"]:
        raise UserError(f"reference log-probs of {source!r} are corrupted (sha256)", file=npz, fix=f"recompute them: {rerun}")
    with np.load(npz) as z:
        return np.array(z["chosen_logps"]), np.array(z["rejected_logps"])
