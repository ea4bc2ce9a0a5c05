"""The [curate] table and per-source filter lists: what a user writes, and the errors for bad input."""

import pytest

from datakit.curate import CurateSpec, parse_filters
from datakit.curate.spec import derive_banding
from datakit.errors import UserError


def test_issue_example_parses_and_derives_banding():
    spec = CurateSpec.from_toml(
        {"dedup": {"exact": True, "minhash": {"threshold": 0.8, "ngram": 5}},
         "decontaminate": {"against": ["gsm8k:test", "ai2_arc:ARC-Challenge:test", "apps:test"], "ngram": 13}},
        file="mix.toml")
    assert spec.dedup.exact and spec.decontaminate.ngram == 13
    b, r = spec.dedup.minhash.banding()
    assert b * r <= 128
    # a pair exactly at the threshold is caught with probability >= 0.95, a pair at 0.5 rarely
    assert spec.dedup.minhash.detection_probability(0.8) >= 0.95
    assert spec.dedup.minhash.detection_probability(0.5) < 0.15


def test_explicit_banding_is_kept():
    spec = CurateSpec.from_toml({"dedup": {"minhash": {"num_buckets": 14, "hashes_per_bucket": 8, "seed": 3}}}, file="m")
    assert spec.dedup.minhash.banding() == (14, 8)
    assert derive_banding(1.0)[0] >= 1


@pytest.mark.parametrize("table, field, words", [
    ({"dedup": {"minhash": {"threshold": 0}}}, "curate.dedup.minhash.threshold", "(0, 1]"),
    ({"dedup": {"minhash": {"threshold": 1.5}}}, "curate.dedup.minhash.threshold", "(0, 1]"),
    ({"dedup": {"minhash": {"num_buckets": 0, "hashes_per_bucket": 8}}}, "curate.dedup.minhash.num_buckets", "greater than 0"),
    ({"dedup": {"minhash": {"num_buckets": 4}}}, "curate.dedup.minhash", "both"),
    ({"dedup": {"exactt": True}}, "curate.dedup.exactt", "unknown key"),
    ({"decontaminate": {"against": ["mmlu:test"]}}, "curate.decontaminate", "unknown eval set"),
    ({"decontaminate": {"against": ["gsm8k:test"], "ngram": 0}}, "curate.decontaminate.ngram", "greater than or equal"),
])
def test_bad_curate_table_names_field_and_fix(table, field, words):
    with pytest.raises(UserError) as e:
        CurateSpec.from_toml(table, file="mix.toml")
    assert e.value.file == "mix.toml" and e.value.field == field and words in e.value.what and e.value.fix


def test_filters_list_parses_every_kind():
    fs = parse_filters(["int_score >= 3", "metadata.score >= 3", "gopher_quality",
                        {"name": "gopher_repetition", "dup_line_frac": 0.3},
                        {"name": "quality_score", "model": "m", "batch_size": 8}], file="f.toml", source="web")
    assert [f.kind for f in fs] == ["expression", "expression", "heuristic", "heuristic", "score"]
    assert fs[3].params == {"dup_line_frac": 0.3} and fs[3].field == "source.web.filters[3]"
    assert len({f.folder for f in fs}) == 5


def test_unknown_filter_lists_known_ones():
    with pytest.raises(UserError) as e:
        parse_filters(["gopher_qualty"], file="f.toml", source="web")
    assert e.value.field == "source.web.filters[0]" and "gopher_quality" in e.value.fix and "fineweb_quality" in e.value.fix


def test_bad_param_lists_allowed_from_datatrove_signature():
    with pytest.raises(UserError) as e:
        parse_filters([{"name": "gopher_repetition", "dup_line_fraction": 0.3}], file="f.toml", source="web")
    assert "dup_line_fraction" in e.value.what and "dup_line_frac" in e.value.fix and "dup_para_frac" in e.value.fix


def test_language_filter_without_local_model_is_refused():
    with pytest.raises(UserError) as e:
        parse_filters([{"name": "language", "languages": ["en"]}], file="f.toml", source="web")
    assert "model_path" in e.value.fix


@pytest.mark.parametrize("expr", ["score >>= 3", "score >= three", "3 <= score"])
def test_unparseable_expression(expr):
    with pytest.raises(UserError) as e:
        parse_filters([expr], file="f.toml", source="web")
    assert e.value.field == "source.web.filters[0]" and "op" in e.value.fix
