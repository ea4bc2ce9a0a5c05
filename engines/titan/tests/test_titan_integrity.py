"""Damaged mixture files never reach training (issue 16): every file the manifest lists is verified
before `titan run` starts, and a shard's structure is checked whenever it is opened, verified or not."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from titan_fixture import phase_file, write_mixture

from datakit.errors import IntegrityError
from datakit.contract import verify_mixture
from datakit_titan.launch import run_phase
from datakit_titan.dataset import MixtureDataset


def copy_of(mixture: Path, tmp_path: Path) -> Path:
    out = tmp_path / "mix"
    shutil.copytree(mixture, out)
    return out


def rows(ds: MixtureDataset) -> int:
    return sum(1 for _ in iter(ds.next_row, None))


def test_an_index_with_a_document_end_at_the_shard_end_is_refused(tmp_path, mixture):
    """The issue's reproduction: one document end set to the shard's end made the loader read tokens twice
    (more rows than the mixture has) and `titan run` train on it with exit 0."""
    good = rows(MixtureDataset(mixture, seq_len=64, infinite=False))
    out = copy_of(mixture, tmp_path)
    index = out / "tokens" / "web" / "00000.ds.index"
    ends = np.fromfile(index, dtype="<u8")
    ends[5] = ends[-1]
    ends.tofile(index)

    with pytest.raises(IntegrityError) as e:
        MixtureDataset(out, seq_len=64, infinite=False)  # verified open: sha256 and structure
    assert "tokens/web/00000.ds.index: sha256 differs" in "\n".join(e.value.details)
    assert "tokens/web/00000.ds.index: document ends are not strictly increasing" in "\n".join(e.value.details)
    with pytest.raises(IntegrityError, match="document ends are not strictly increasing") as e:
        MixtureDataset(out, seq_len=64, infinite=False, verify=False)  # what a training process opens
    assert str(out / "tokens" / "web" / "00000.ds") in str(e.value)

    phase = phase_file(tmp_path, out)
    with pytest.raises(IntegrityError, match="do not match the manifest") as e:
        run_phase(phase, device="cpu")  # refused before any process is launched
    assert e.value.field == "phase.mixture" and not (tmp_path / "out").exists()
    assert good == rows(MixtureDataset(mixture, seq_len=64, infinite=False))


def test_a_moved_document_boundary_is_caught_by_its_sha256(tmp_path, mixture):
    """A damage the structure cannot see (ends still increasing, last end right): only the hash finds it."""
    out = copy_of(mixture, tmp_path)
    index = out / "tokens" / "math" / "00000.ds.index"
    ends = np.fromfile(index, dtype="<u8")
    ends[3] -= 1
    ends.tofile(index)
    report = verify_mixture(out)
    assert report.bad_files == ["tokens/math/00000.ds.index"]
    assert verify_mixture(out, quick=True).ok  # same size: the quick check cannot see it, by design


def test_loss_masks_are_listed_checked_and_never_picked_up_unlisted(tmp_path):
    mixture = write_mixture(tmp_path / "masked", loss_mask=True)
    assert verify_mixture(mixture).ok
    loss = mixture / "tokens" / "code" / "00000.ds.loss"
    data = np.fromfile(loss, dtype=np.uint8)
    data[:-1].tofile(loss)  # one entry short
    with pytest.raises(IntegrityError, match=f"the loss mask has {len(data) - 1:,} entries for {len(data):,} tokens"):
        MixtureDataset(mixture, seq_len=64, verify=False)
    assert [str(p) for p in verify_mixture(mixture).problems] == [
        f"tokens/code/00000.ds.loss: {len(data) - 1:,} bytes, the manifest implies {len(data):,}"]

    plain = write_mixture(tmp_path / "plain")
    stray = plain / "tokens" / "web" / "00000.ds.loss"
    np.zeros(20, np.uint8).tofile(stray)  # a mask the manifest does not list would silence labels
    assert verify_mixture(plain).bad_files == ["tokens/web/00000.ds.loss"]


def test_manifest_totals_and_accounting_must_agree(tmp_path, mixture):
    import duckdb

    out = copy_of(mixture, tmp_path)
    con = duckdb.connect(str(out / "accounting.duckdb"))
    con.execute("update docs set tokens = tokens + 1 where source = 'code' and position = (select min(position) from docs where source = 'code')")
    con.close()
    report = verify_mixture(out)
    assert report.bad_files == ["accounting.duckdb"] and "table docs, tokens/code/00000.ds" in str(report.problems[0])
    (out / "accounting.duckdb").unlink()
    assert [str(p) for p in verify_mixture(out, quick=True).problems] == ["accounting.duckdb: missing"]


def test_token_ids_past_the_vocabulary_and_non_binary_masks_are_found(tmp_path):
    mixture = write_mixture(tmp_path / "m", loss_mask=True)
    tokens = np.fromfile(mixture / "tokens" / "web" / "00000.ds", "<u2")
    tokens[3] = 600  # the fixture's vocabulary is 512
    tokens.tofile(mixture / "tokens" / "web" / "00000.ds")
    mask = np.fromfile(mixture / "tokens" / "code" / "00000.ds.loss", np.uint8)
    mask[0] = 7
    mask.tofile(mixture / "tokens" / "code" / "00000.ds.loss")
    found = [str(p) for p in verify_mixture(mixture).problems]
    assert "tokens/web/00000.ds: token id 600 >= vocab size 512" in found
    assert "tokens/code/00000.ds.loss: loss mask value 7 (only 0 and 1 are valid)" in found
