"""MosaicML streaming (MDS) shards, written by its MDSWriter: one sample per document, `input_ids` as
ndarray:uint16 / uint32 (the manifest's width) and, where the source has one, `loss_mask` as ndarray:uint8.

mosaicml-streaming is not a datakit dependency: it pins transformers < 5 and numpy < 2.2, and needs a
torchvision that matches your torch build (`pip install mosaicml-streaming` next to your trainer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datakit.contract.reader import Mixture
from datakit.errors import UserError


def write_mds(mix: Mixture, out: Path) -> list[Path]:
    try:
        from streaming import MDSWriter
    except ImportError as e:
        raise UserError(f"MDS export needs mosaicml-streaming ({e})", field="--to", fix="pip install mosaicml-streaming") from None
    dtype = "uint16" if mix.manifest.tokenizer.token_size_bytes == 2 else "uint32"
    written = []
    for src in mix.sources:
        if not src.n_docs:
            continue
        columns = {"input_ids": f"ndarray:{dtype}", **({"loss_mask": "ndarray:uint8"} if src.has_loss else {})}
        with MDSWriter(out=str(out / src.name), columns=columns) as w:
            for d in src.documents():
                sample = {"input_ids": np.asarray(d.tokens, dtype)}
                if src.has_loss:
                    sample["loss_mask"] = np.asarray(d.loss_mask if d.loss_mask is not None else np.ones(len(d.tokens)), np.uint8)
                w.write(sample)
        written.append(out / src.name)
    return written
