"""The dataloader's rows checked against the shards themselves: tokens, boundaries, shares, resume."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from titan_fixture import SOURCES, source_of, write_mixture
from torchdata.stateful_dataloader import StatefulDataLoader

from datakit.errors import IntegrityError, UserError
from datakit.contract import load_manifest, read_shard
from datakit_titan.dataset import IGNORE_INDEX, MixtureDataset

EOS = 2


def shard_docs(folder, name, rank=0, world=1):
    """Every document of one source, straight from its shards, as this rank should read them."""
    m = load_manifest(folder)
    docs = []
    for sh in m.source(name).shards:
        tokens, ends, _ = read_shard(folder / sh.path)
        ends = ends.astype(np.int64)
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        docs += [np.asarray(tokens[a:b]) for a, b in zip(starts, ends)]
    return docs[rank::world]


def rows(ds, n=None):
    out = []
    while n is None or len(out) < n:
        row = ds.next_row()
        if row is None:
            break
        out.append(row)
    return out


def docs_from_rows(rs):
    """Rebuild whole documents from rows: a document ends at the pair whose label is </s>."""
    inputs = np.concatenate([r[0] for r in rs])
    labels = np.concatenate([r[1] for r in rs])
    ends = np.flatnonzero(labels == EOS)
    docs, start = [], 0
    for e in ends:
        docs.append(np.concatenate([inputs[start : e + 1], [EOS]]))
        start = e + 1
    return docs


def test_rows_are_the_shards_documents_in_order(mixture):
    ds = MixtureDataset(mixture, seq_len=64, infinite=False)
    rs = rows(ds)
    assert len(rs) > 100 and all(len(r[0]) == 64 for r in rs)
    got = docs_from_rows(rs)
    by_source = {name: [d for d in got if source_of(int(d[1])) == name] for name in SOURCES}
    for name in SOURCES:
        want = shard_docs(mixture, name)
        assert len(by_source[name]) >= len(want) - 1  # at most the cut-off tail document is missing
        for g, w in zip(by_source[name], want):
            np.testing.assert_array_equal(g, w)
            assert g[0] == 1 and g[-1] == EOS


def test_positions_restart_at_every_document_and_row(mixture):
    ds = MixtureDataset(mixture, seq_len=64, infinite=False)
    for inputs, labels, positions in rows(ds, 50):
        expected, p = [], 0
        for lab in labels:
            expected.append(p)
            p = 0 if lab == EOS else p + 1
        np.testing.assert_array_equal(positions, expected)
        # a document never predicts the next one's <s>
        assert not np.any((inputs == EOS) & (labels == 1))


def test_without_document_masking_rows_are_one_causal_sequence_with_the_same_tokens(mixture):
    masked = rows(MixtureDataset(mixture, seq_len=64, infinite=False), 30)
    plain = rows(MixtureDataset(mixture, seq_len=64, infinite=False, document_masking=False), 30)
    for (i1, l1, p1), (i2, l2, p2) in zip(masked, plain):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(l1, l2)  # labels still stop at every document end
        np.testing.assert_array_equal(p2, np.arange(64))
        assert not np.array_equal(p1, p2) or EOS not in l1[:-1]


def test_sources_are_read_in_manifest_shares(mixture):
    m = load_manifest(mixture)
    ds = MixtureDataset(mixture, seq_len=64, infinite=False)
    labels = np.concatenate([r[1] for r in rows(ds, 150)])  # well before any source runs out
    counts = {name: 0 for name in SOURCES}
    for name in SOURCES:
        lo, hi = SOURCES[name][1], SOURCES[name][2]
        counts[name] = int(((labels >= lo) & (labels < hi)).sum())
    total = sum(counts.values())
    for src in m.sources:
        assert abs(counts[src.name] / total - src.weight) < 0.02, (counts, src.weight)


def test_resume_continues_with_the_exact_next_token(mixture):
    straight = rows(MixtureDataset(mixture, seq_len=48), 40)
    first = MixtureDataset(mixture, seq_len=48)
    rows(first, 17)
    state = first.state_dict()
    resumed = MixtureDataset(mixture, seq_len=48)
    resumed.load_state_dict(state)
    for a, b in zip(straight[17:], rows(resumed, 23)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_resume_through_torchdata_stateful_dataloader(mixture):
    def loader():
        return StatefulDataLoader(MixtureDataset(mixture, seq_len=32), batch_size=4)

    straight = [b for _, b in zip(range(12), loader())]
    dl = loader()
    it = iter(dl)
    for _ in range(5):
        next(it)
    state = dl.state_dict()
    dl2 = loader()
    dl2.load_state_dict(state)
    for a, (inp, lab) in zip(straight[5:], dl2):
        assert (a[0]["input"] == inp["input"]).all() and (a[1] == lab).all()
        assert (a[0]["positions"] == inp["positions"]).all()


def test_epochs_loop_when_infinite(mixture):
    ds = MixtureDataset(mixture, seq_len=256, infinite=True)
    total = load_manifest(mixture).total_tokens
    rs = rows(ds, total // 256 + 5)
    assert ds.epoch == 1 and len(rs) == total // 256 + 5


def test_data_parallel_ranks_read_disjoint_documents(mixture):
    for rank in range(2):
        ds = MixtureDataset(mixture, seq_len=64, dp_rank=rank, dp_world_size=2, infinite=False)
        got = docs_from_rows(rows(ds))
        for name in SOURCES:
            mine = [d for d in got if source_of(int(d[1])) == name]
            want = shard_docs(mixture, name, rank, 2)
            assert len(mine) >= len(want) - 1
            for g, w in zip(mine, want):
                np.testing.assert_array_equal(g, w)


def test_loss_mask_turns_labels_into_ignore_index(tmp_path):
    folder = write_mixture(tmp_path / "sft", {"chat": (40, 10, 500, 40)}, loss_mask=True)
    docs = shard_docs(folder, "chat")
    inputs, labels, _ = MixtureDataset(folder, seq_len=10_000, infinite=False).next_row() or (None, None, None)
    if inputs is None:  # fixture smaller than one row: use a shorter row
        inputs, labels, _ = MixtureDataset(folder, seq_len=512, infinite=False).next_row()
    first = docs[0]
    n = len(first) - 1
    want = first[1:].astype(np.int64).copy()
    want[np.arange(1, len(first)) < len(first) // 2] = IGNORE_INDEX
    np.testing.assert_array_equal(labels[:n], want)
    np.testing.assert_array_equal(inputs[:n], first[:-1])


def test_bad_mixtures_are_user_errors(tmp_path, mixture):
    with pytest.raises(UserError, match="does not exist"):
        MixtureDataset(tmp_path / "nope", seq_len=8)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(mixture, unfinished)
    (unfinished / "manifest.json").unlink()
    with pytest.raises(UserError, match="unfinished"):
        MixtureDataset(unfinished, seq_len=8)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(mixture, corrupt)
    shard = next((corrupt / "tokens" / "math").glob("*.ds"))
    data = bytearray(shard.read_bytes())
    data[10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="do not match the manifest") as e:
        MixtureDataset(corrupt, seq_len=8)
    assert f"{shard.relative_to(corrupt)}: sha256 differs" in str(e.value) and e.value.exit_code == 1
