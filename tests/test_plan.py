"""`datakit mix plan`: availability (catalog, counted, chars/4), targets from tokens/all/weight, notes."""

import json

from datakit.mix.build import plan_mixture
from datakit.mix.plan import make_plan
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
