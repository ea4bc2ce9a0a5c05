"""The build's held-out slice: documents per source that never reach the training shards, written as a
mixture of their own and recorded in the manifest and the accounting."""

from __future__ import annotations

import duckdb
import pytest

from datakit.contract import load_manifest, verify_mixture
from datakit.mix.build import build_mixture
from datakit.mix.heldout import choose_heldout, heldout_size
from datakit.mix.pipeline import ExecutorOptions
from datakit.spec import load_spec
from smoke_helpers import SMALL


def test_choice_is_by_id_not_by_order():
    ids = [f"doc-{i}" for i in range(50)]
    a = {ids[i] for i in choose_heldout(ids, 5, seed=7, source="s")}
    rev = ids[::-1]
    b = {rev[i] for i in choose_heldout(rev, 5, seed=7, source="s")}
    assert a == b and len(a) == 5
    assert {ids[i] for i in choose_heldout(ids, 5, seed=8, source="s")} != a  # the seed moves the slice


def test_size_never_more_than_a_tenth():
    assert heldout_size(1000, 8) == 8
    assert heldout_size(30, 8) == 3
    assert heldout_size(9, 8) == 0
    assert heldout_size(1000, 0) == 0


@pytest.fixture(scope="module")
def built(tmp_path_factory, smoke_tokenizer):
    d = tmp_path_factory.mktemp("heldout")
    text = SMALL.format(tokenizer=smoke_tokenizer).replace('output = "mix"', f'output = "{d / "mix"}"\nheldout_docs = 6')
    text += '\n[[source]]\nname = "arc-none"\nuri = "samples://allenai__ai2_arc/ARC-Easy/train-*.parquet"\nformat = "arc"\ntokens = "all"\nheldout_docs = 0\n'
    (d / "small.toml").write_text(text)
    spec = load_spec(d / "small.toml")
    return spec, build_mixture(spec, ExecutorOptions(workers=1), progress=False)


def test_heldout_is_a_verified_mixture_disjoint_from_training(built):
    spec, m = built
    held = load_manifest(spec.output / "heldout")
    verify_mixture(spec.output / "heldout", manifest=held).raise_if_bad()
    assert {s.name: s.docs_written for s in held.sources} == {"gsm8k": 6, "arc": 6}  # arc-none asked for 0
    assert held.tokenizer == m.tokenizer
    con = duckdb.connect(str(spec.output / "accounting.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from heldout").fetchone()[0] == 12
        leaked = con.execute("select count(*) from docs d join heldout h on d.source = h.source and d.doc_id = h.doc_id").fetchone()[0]
    finally:
        con.close()
    assert leaked == 0
    hcon = duckdb.connect(str(spec.output / "heldout" / "accounting.duckdb"), read_only=True)
    try:
        held_ids = {r[0] for r in hcon.execute("select doc_id from docs").fetchall()}
    finally:
        hcon.close()
    assert len(held_ids) == 12
    assert any("held out: 12 documents" in n for n in m.notes)
    verify_mixture(spec.output, manifest=m).raise_if_bad()  # the training build still verifies


def test_available_counts_exclude_the_heldout(built, tmp_path, smoke_tokenizer):
    spec, m = built
    text = (spec.output.parent / "small.toml").read_text().replace("heldout_docs = 6", "heldout_docs = 0").replace(
        str(spec.output), str(tmp_path / "mix0"))
    (tmp_path / "s.toml").write_text(text)
    m0 = build_mixture(load_spec(tmp_path / "s.toml"), ExecutorOptions(workers=1), progress=False)
    assert not (tmp_path / "mix0" / "heldout").exists()
    for name in ("gsm8k", "arc"):
        assert m0.source(name).docs_available == m.source(name).docs_available + 6
    assert m0.source("arc-none").docs_available == m.source("arc-none").docs_available
