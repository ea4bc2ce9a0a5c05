"""datakit.contract: the strict manifest, the uint16 boundary, the one reader and its cursors (no torch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from datakit.contract import IGNORE_INDEX, PackedCursor, load_manifest, open_mixture, token_size_for_vocab
from datakit.contract.records import DpoRecord, PlanningRecord, SftRecord
from datakit.contract.writer import write_mixture
from datakit.errors import IntegrityError, UserError

RNG = np.random.default_rng(0)


def docs(n: int, lo: int, hi: int, vocab: int = 4096) -> list[list[int]]:
    return [[1, *RNG.integers(lo, hi, int(RNG.integers(3, 40))).tolist(), 2] for _ in range(n)]


@pytest.fixture
def mix(tmp_path):
    folder = tmp_path / "mix"
    m = write_mixture(folder, {"a": docs(50, 10, 100), "b": docs(30, 100, 200)}, vocab_size=4096, seq_len=32, docs_per_shard=16)
    from datakit.accounting.db import write_accounting_from_shards

    write_accounting_from_shards(folder, m)  # verify checks it against the manifest
    return folder


@pytest.mark.parametrize("vocab, size, top_id", [(65_536, 2, 65_535), (65_537, 4, 65_536)])
def test_the_uint16_boundary_both_sides(tmp_path, vocab, size, top_id):
    assert token_size_for_vocab(vocab) == size
    m = write_mixture(tmp_path / "m", {"s": [[1, top_id, 7, 2], [1, top_id - 1, 2]]}, vocab_size=vocab, seq_len=8)
    assert m.tokenizer.token_size_bytes == size
    assert (tmp_path / "m" / m.sources[0].shards[0].path).stat().st_size == 7 * size
    got = [d.tokens.tolist() for d in open_mixture(tmp_path / "m", verify=False).source("s").documents()]
    assert got == [[1, top_id, 7, 2], [1, top_id - 1, 2]]  # read with the manifest's token size, not a guess


def test_a_manifest_that_breaks_the_uint16_rule_or_has_unknown_fields_is_refused(mix):
    path = mix / "manifest.json"
    raw = json.loads(path.read_text())
    for change, what in [({"tokenizer": {**raw["tokenizer"], "vocab_size": 65_537}}, "token_size_bytes 2 does not fit"),
                         ({"surprise": 1}, "surprise"), ({"format": "datakit.mixture/9"}, "datakit.mixture/9")]:
        path.write_text(json.dumps({**raw, **change}))
        with pytest.raises(UserError, match="manifest is not valid") as e:
            load_manifest(mix)
        assert what in str(e.value)


def test_documents_are_the_written_ones_and_verify_catches_a_changed_byte(mix, tmp_path):
    m = load_manifest(mix)
    opened = open_mixture(mix, verify=False)
    assert [s.n_docs for s in opened.sources] == [50, 30] and len(m.source("a").shards) == 4
    assert all(int(d.tokens[0]) == 1 and int(d.tokens[-1]) == 2 for _, d in opened.documents())
    shard = mix / m.source("b").shards[0].path
    data = bytearray(shard.read_bytes())
    data[4] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        open_mixture(mix)  # verify=True by default
    open_mixture(mix, verify="quick")  # sizes only: the cheap check passes


def _pairs(cursor) -> int:
    return sum(int((w.labels != IGNORE_INDEX).sum()) for w in cursor)


def test_windows_are_deterministic_sharded_and_resume_exactly(mix):
    opened = open_mixture(mix, verify=False)
    total_pairs = sum(len(d.tokens) - 1 for _, d in opened.documents())
    # every (input, label) pair of every document, once; the last, partial window is dropped (< 16 pairs per reader)
    assert 0 <= total_pairs - _pairs(PackedCursor(opened, 16, infinite=False)) < 16
    assert 0 <= total_pairs - sum(_pairs(PackedCursor(opened, 16, rank=r, world_size=3, infinite=False)) for r in range(3)) < 3 * 16
    a = [w.inputs.tolist() for w in PackedCursor(opened, 16, rank=1, world_size=3, infinite=False)]
    assert a == [w.inputs.tolist() for w in PackedCursor(opened, 16, rank=1, world_size=3, infinite=False)]
    straight = PackedCursor(opened, 16)
    ref = [straight.next_window() for _ in range(120)]  # past one epoch
    assert straight.epoch == 1
    for k in (0, 7, 113):
        first = PackedCursor(opened, 16)
        for _ in range(k):
            first.next_window()
        resumed = PackedCursor(opened, 16)
        resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
        for j in range(k, 120):
            w = resumed.next_window()
            assert all((x == y).all() for x, y in zip(w, ref[j])), (k, j)


def test_contract3_records_validate_what_synth_writes():
    assert SftRecord(prompt="<problem>p</problem>", completion="<thinking>t</thinking><answer>a</answer>", meta={"verified": True})
    with pytest.raises(ValueError, match="same text"):
        DpoRecord(prompt="p", chosen="a  b", rejected="a b")
    with pytest.raises(ValueError, match="extra"):
        SftRecord(prompt="p", completion="c", tokens=3)
    rec = PlanningRecord(domain="logistics", problem="P", thinking="T", answer="A")
    assert rec.render() == "<problem>P</problem><thinking>T</thinking><answer>A</answer>"
