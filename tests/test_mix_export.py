"""`datakit mix export`: each format read back by the target library's own reader, on both sides of the
uint16 boundary where the format keeps the width."""

from __future__ import annotations

import numpy as np
import pytest

from datakit.accounting.db import write_accounting_from_shards
from datakit.contract.writer import write_mixture
from datakit.errors import UserError
from datakit.export import export_mixture
from smoke_helpers import run_cli

RNG = np.random.default_rng(1)


def make(tmp_path, vocab: int, with_loss: bool = False):
    top = vocab - 1
    sources = {"web": [[1, *RNG.integers(3, top, int(RNG.integers(2, 30))).tolist(), top, 2] for _ in range(40)],
               "math": [[1, *RNG.integers(3, 50, int(RNG.integers(2, 30))).tolist(), 2] for _ in range(25)]}
    masks = {"math": [[0] * (len(d) // 2) + [1] * (len(d) - len(d) // 2) for d in sources["math"]]} if with_loss else None
    m = write_mixture(tmp_path / "mix", sources, vocab_size=vocab, seq_len=64, loss_masks=masks, docs_per_shard=16)
    write_accounting_from_shards(tmp_path / "mix", m)
    return tmp_path / "mix", sources, masks


@pytest.mark.parametrize("vocab", [65_536, 65_537])
def test_megatron_bin_idx_read_back_by_megatron_core(tmp_path, vocab):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    mix, sources, _ = make(tmp_path, vocab)
    export_mixture(mix, "megatron", tmp_path / "out")
    for name, docs in sources.items():
        ds = IndexedDataset(str(tmp_path / "out" / name))
        assert len(ds) == len(docs)
        assert all(ds[i].tolist() == d for i, d in enumerate(docs))
        assert ds[0].dtype == (np.uint16 if vocab == 65_536 else np.int32)
    weights = (tmp_path / "out" / "blend.txt").read_text().split()[0::2]
    assert abs(sum(map(float, weights)) - 1) < 1e-5


def test_megatron_refuses_loss_masks_it_cannot_hold(tmp_path):
    mix, _, _ = make(tmp_path, 4096, with_loss=True)
    with pytest.raises(UserError, match="loss masks"):
        export_mixture(mix, "megatron", tmp_path / "out")


@pytest.mark.parametrize("vocab", [65_536, 65_537])
def test_hf_parquet_read_back_by_datasets(tmp_path, vocab):
    import datasets

    mix, sources, masks = make(tmp_path, vocab, with_loss=True)
    r = run_cli("mix", "export", mix, "--to", "hf-parquet", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    for name, docs in sources.items():
        ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "out" / name / "*.parquet"), split="train")
        assert ds["input_ids"] == docs
        if name == "math":
            assert ds["loss_mask"] == masks["math"]
        want = "uint16" if vocab == 65_536 else "uint32"
        assert ds.features["input_ids"].feature.dtype == want


def test_mds_needs_mosaicml_streaming(tmp_path):
    """MDS round trip with streaming's own reader runs where mosaicml-streaming installs (not in this venv: it
    pins transformers < 5 and numpy < 2.2 and needs a torchvision for this CPU torch build)."""
    mix, sources, _ = make(tmp_path, 4096)
    try:
        from streaming import StreamingDataset  # noqa: F401
    except Exception:
        with pytest.raises(UserError, match="mosaicml-streaming"):
            export_mixture(mix, "mds", tmp_path / "out")
        return
    export_mixture(mix, "mds", tmp_path / "out")
    from streaming import LocalDataset

    ds = LocalDataset(str(tmp_path / "out" / "web"))
    assert [ds[i]["input_ids"].tolist() for i in range(len(ds))] == sources["web"]
