"""`datakit mix export`: a built mixture in the formats other trainers read, one output per source.

    megatron     <out>/<source>.bin + .idx (Megatron-LM / NeMo indexed dataset, written by datatrove's
                 MegatronTokenizedFile) and <out>/blend.txt: the `--data-path` weights from the manifest
    hf-parquet   <out>/<source>/data-00000.parquet: one row per document, `input_ids` (+ `loss_mask`), for
                 `datasets.load_dataset("parquet", ...)`
    mds          <out>/<source>/: MosaicML streaming shards (MDSWriter), columns `input_ids` (+ `loss_mask`)

Token ids keep the manifest's width where the format allows (uint16 up to a 65,536 vocabulary, else 4 bytes).
"""

from __future__ import annotations

import os
from pathlib import Path

from datakit.contract.reader import open_mixture
from datakit.errors import UserError

TARGETS = ("megatron", "hf-parquet", "mds")


def export_mixture(mixture: str | os.PathLike, to: str, out: str | os.PathLike, *, drop_loss_masks: bool = False,
                   verify: bool = True) -> list[Path]:
    """Write every source of a built mixture as `to`; returns the files or folders written."""
    if to not in TARGETS:
        raise UserError(f"unknown export format {to!r}", field="--to", fix=f"use one of: {', '.join(TARGETS)}")
    mix = open_mixture(mixture, verify=verify)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if to == "megatron":
        from datakit.export.megatron import write_megatron

        masked = [s.name for s in mix.sources if s.has_loss]
        if masked and not drop_loss_masks:
            raise UserError(f"sources {', '.join(masked)} have loss masks, which Megatron's indexed format cannot hold",
                            field="--to", fix="export them as hf-parquet or mds (both keep the masks), or pass --drop-loss-masks")
        return write_megatron(mix, out)
    if to == "hf-parquet":
        from datakit.export.hf_parquet import write_parquet

        return write_parquet(mix, out)
    from datakit.export.mds import write_mds

    return write_mds(mix, out)
