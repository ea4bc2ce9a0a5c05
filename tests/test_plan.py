"""`datakit mix plan`: availability (catalog, counted, chars/4), targets from tokens/all/weight, notes."""

import json

from datakit.mix.build import plan_mixture
from datakit.mix.plan import format_plan, make_plan
from datakit.spec import load_spec, parse_spec

from smoke_helpers import ROOT, run_cli


def test_local_sources_counted_without_tokenizer_as_chars_estimate(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(
        f'[mixture]\nname = "s"\ntokenizer = "{tmp_path / "missing.json"}"\noutput = "{tmp_path / "o"}"\n'
        '[[source]]\nname = "gsm8k"\nuri = "samples://openai__gsm8k/main/train-*.parquet"\nformat = "gsm8k"\ntokens = "50K"\n'
    )
    plan = plan_mixture(load_spec(p), progress=False)
    (g,) = plan.sources
    assert g.basis.startswith("chars/4") and g.docs_available == 400
    assert 20_000 < g.tokens_available < 60_000 and g.epochs == 50_000 / g.tokens_available


def test_weights_share_what_explicit_targets_leave():
    spec = parse_spec({
        "mixture": {"name": "w", "tokenizer": "t.json", "output": "o", "total_tokens": "10B"},
        "source": [
            {"name": "a", "uri": "hf://HuggingFaceTB/finemath", "config": "finemath-3plus", "format": "finemath", "tokens": "4B"},
            {"name": "b", "uri": "hf://HuggingFaceTB/smollm-corpus", "config": "cosmopedia-v2", "format": "cosmopedia", "weight": 3},
            {"name": "c", "uri": "hf://HuggingFaceTB/smollm-corpus", "config": "python-edu", "format": "code", "weight": 1},
        ],
    })
    plan = make_plan(spec)
    t = {s.name: s.tokens_target for s in plan.sources}
    assert t == {"a": 4 * 10**9, "b": 4_500_000_000, "c": 1_500_000_000}
    assert abs(sum(s.share for s in plan.sources) - 1) < 1e-9
    assert not plan.notes  # adds up to total_tokens


def test_total_mismatch_is_noted_and_seed_midtrain_is_feasible():
    spec = load_spec(ROOT / "mixtures" / "midtrain.toml")
    plan = make_plan(spec)
    assert not plan.refused  # the committed spec is the feasible version of the seed plan
    seed = spec.model_copy(deep=True)
    seed.get("gsm8k").tokens = 10 * 10**9
    refused = make_plan(seed).refused
    assert [s.name for s in refused] == ["gsm8k"] and refused[0].epochs > 5000


def test_plan_json_cli():
    r = run_cli("mix", "plan", ROOT / "mixtures" / "pretrain.toml", "--json", "--no-count")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    fw = next(s for s in data["sources"] if s["name"] == "fineweb-edu")
    assert fw["basis"] == "card" and fw["tokens_target"] == 30 * 10**9 and data["refused"] == []


def test_curation_estimate_discounts_unread_sources_and_states_its_basis():
    base = {
        "mixture": {"name": "c", "tokenizer": "t.json", "output": "o"},
        "source": [
            {"name": "fm", "uri": "hf://HuggingFaceTB/finemath", "config": "finemath-3plus", "format": "finemath", "tokens": "30B"},
            {"name": "fw", "uri": "hf://HuggingFaceTB/smollm-corpus", "config": "fineweb-edu-dedup", "format": "fineweb-edu", "tokens": "all"},
        ],
    }
    assert all(s.tokens_after_curate is None for s in make_plan(parse_spec(base)).sources)  # no [curate]: nothing assumed
    spec = parse_spec({**base, "curate": {"dedup": {"exact": True, "minhash": {"threshold": 0.8}},
                                          "decontaminate": {"against": ["gsm8k:test"]}}})
    plan = make_plan(spec)
    fm, fw = plan.sources
    assert fm.tokens_after_curate == int(34 * 10**9 * (1 - 0.01) * (1 - 0.001)) and fm.epochs == 30 * 10**9 / fm.tokens_after_curate
    assert fw.curate_removed == (0.0, 0.001) and "deduplicated" in fw.curate_basis  # the card: already deduplicated
    assert fw.tokens_target == fw.tokens_after_curate  # "all" = one pass of what curation leaves
    text = format_plan(plan)
    assert "ESTIMATE" in text and f"34,000,000,000 x (1 - 0.01) x (1 - 0.001) = {fm.tokens_after_curate:,}" in text
    only_dedup = parse_spec({**base, "curate": {"dedup": {"exact": True}}})
    assert make_plan(only_dedup).sources[0].curate_removed == (0.01, 0.0)


def test_real_specs_curate_against_the_eval_sets_and_hold_the_plans_sources():
    evals = {"gsm8k:test", "ai2_arc:ARC-Challenge:test", "ai2_arc:ARC-Easy:test", "apps:test", "hellaswag:validation"}
    for name in ("pretrain", "midtrain"):
        spec = load_spec(ROOT / "mixtures" / f"{name}.toml")
        assert spec.curate.dedup.exact and spec.curate.dedup.minhash is not None, name
        assert set(spec.curate.decontaminate.against) == evals, name
        plan = make_plan(spec)
        assert not plan.refused and all(s.tokens_after_curate for s in plan.sources if s.uri.startswith("hf://")), name
    mid = load_spec(ROOT / "mixtures" / "midtrain.toml")
    repos = {s.location for s in mid.source}
    assert {"google/boolq", "deepmind/math_dataset", "HuggingFaceTB/smoltalk2"} <= repos
    assert mid.mixture.total_tokens == 50 * 10**9


def test_phase3_spec_encodes_the_plans_split_with_long_context():
    spec = load_spec(ROOT / "mixtures" / "longctx_sft_dpo.toml")
    assert (spec.mixture.seq_len, spec.mixture.total_tokens) == (8192, 25 * 10**9)
    t = {s.name: s.tokens for s in spec.source}
    assert t == {"long-docs": 22 * 10**9, "planning-sft": 2 * 10**9, "planning-dpo": 1 * 10**9}
    for name in ("planning-sft", "planning-dpo"):
        assert spec.get(name).context.sources == ["long-docs"] and spec.get(name).context.max_tokens is None
    plan = make_plan(spec)
    assert "planning-sft: target 2,000,000,000 tokens = rows filled with context to 8,192 tokens: 2,000,000,000 / 8,192 = ~244,141 examples" in plan.notes
    assert any("1,000,000,000 / (2 x 8,192) = ~61,035 pairs" in n for n in plan.notes)
    assert not plan.refused
