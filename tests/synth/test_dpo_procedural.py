"""`datakit synth dpo` on procedural records: every kept pair is proven (chosen passes, rejected fails)."""

from __future__ import annotations

import json
import random

import pytest

from datakit.errors import UserError
from datakit.synth.dpo import make_dpo, pair_from_record
from datakit.synth.flaws import CATALOG, domain_flaws, make_flawed
from datakit.synth.procedural import DOMAINS, check_completion, generate, make_record
from datakit.synth.procedural.common import FlawNotApplicable, split_completion


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def planning(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planning")
    generate(folder, 100, seed=2, progress=False)
    return folder


def test_every_kept_pair_is_proven(planning, tmp_path):
    s = make_dpo(planning, tmp_path, pairs_per_record=3, progress=False)
    pairs = _lines(tmp_path / "records" / "dpo-procedural-s0.jsonl")
    assert s["pairs_written"] == len(pairs) >= 250
    seen_flaws = {(p["meta"]["domain"], p["meta"]["flaw"]) for p in pairs}
    for domain in DOMAINS:  # every domain yields every flaw it supports on 20 records
        assert {f for d, f in seen_flaws if d == domain} == set(domain_flaws(domain)), domain
    for p in pairs:
        assert set(p) == {"id", "prompt", "chosen", "rejected", "meta"}
        m = p["meta"]
        assert m["verified"] is True and m["flaw"] in CATALOG and p["prompt"].startswith("<problem>")
        assert p["chosen"].startswith("<thinking>Step 1:") and "</thinking><answer>" in p["rejected"]
        inst = m["instance"]
        assert check_completion(m["domain"], inst, *split_completion(p["chosen"])) == []
        assert check_completion(m["domain"], inst, *split_completion(p["rejected"])) != []
        if m["location"] == "thinking":  # the flawed step is where the two traces first differ
            chosen_steps = split_completion(p["chosen"])[0].splitlines()
            rejected_steps = split_completion(p["rejected"])[0].splitlines()
            first_diff = next((i for i, (a, b) in enumerate(zip(chosen_steps, rejected_steps)) if a != b),
                              min(len(chosen_steps), len(rejected_steps)))
            assert m["step"] is not None and first_diff + 1 <= m["step"], (m, first_diff)
    assert len({p["id"] for p in pairs}) == len(pairs)
    # dropped candidates are counted and kept for inspection, never in the set
    rejects = _lines(tmp_path / "rejects" / "dpo-procedural-s0.jsonl") if s["dropped"] else []
    assert all(r["reason"] != "kept" for r in rejects)
    for r in rejects:
        if r["reason"] == "rejected_passes_checker":
            assert check_completion(r["meta"]["domain"], r["meta"]["instance"], *split_completion(r["rejected"])) == []


def test_rerun_resumes_without_duplicates(planning, tmp_path):
    first = make_dpo(planning, tmp_path, limit=30, progress=False)
    again = make_dpo(planning, tmp_path, limit=60, progress=False)
    pairs = _lines(tmp_path / "records" / "dpo-procedural-s0.jsonl")
    assert first["pairs_written"] == 30 and again["records_skipped_existing"] == 30
    assert len(pairs) == 60 == len({p["id"] for p in pairs})


def test_flaw_filter(planning, tmp_path):
    make_dpo(planning, tmp_path, flaws=["dependency_order"], progress=False)
    pairs = _lines(tmp_path / "records" / "dpo-procedural-s0.jsonl")
    assert pairs and {p["meta"]["flaw"] for p in pairs} == {"dependency_order"}
    assert {p["meta"]["domain"] for p in pairs} == {"software_architecture", "research_planning"}
    with pytest.raises(UserError, match="unknown flaw"):
        make_dpo(planning, tmp_path / "x", flaws=["typo"], progress=False)


def test_a_flaw_that_does_not_break_the_plan_is_dropped():
    # a route with no closed road on or off it: ignoring weight limits changes nothing -> not a proven flaw
    rec = make_record("logistics", 0)
    inst = rec["meta"]["instance"]
    for r in inst["roads"]:
        r["limit_t"] = None
    with pytest.raises(FlawNotApplicable):
        make_flawed("logistics", inst, "missed_constraint", random.Random(0))
    rec = make_record("resource_allocation", 0)
    inst = rec["meta"]["instance"]
    inst["capacity"]["budget_k"] = 1000  # budget never binds: forgetting it yields the same (correct) plan
    from datakit.synth.procedural import resource_allocation

    sol = resource_allocation.solve(inst)
    rec.update(thinking=sol.thinking, answer=sol.answer)
    rec["meta"]["instance"] = inst
    pair, status = pair_from_record(rec, "missed_constraint", random.Random(0))
    assert status == "rejected_passes_checker"


def test_bad_from_folders_are_refused_before_writing(tmp_path):
    with pytest.raises(UserError, match="not found"):
        make_dpo(tmp_path / "missing", tmp_path / "out", progress=False)
    (tmp_path / "notplan" / "records").mkdir(parents=True)
    (tmp_path / "notplan" / "records" / "x.jsonl").write_text(json.dumps({"id": "a", "prompt": "p", "completion": "c"}) + "\n")
    with pytest.raises(UserError, match="not a planning record"):
        make_dpo(tmp_path / "notplan", tmp_path / "out", progress=False)
    good = make_record("multi_agent", 0)
    good["meta"]["instance"]["grid"] = 42  # instance that does not parse
    (tmp_path / "broken" / "records").mkdir(parents=True)
    (tmp_path / "broken" / "records" / "x.jsonl").write_text(json.dumps(make_record("logistics", 1)) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(UserError) as e:
        make_dpo(tmp_path / "broken", tmp_path / "out", progress=False)
    assert "line 2" in str(e.value) and e.value.field == "meta.instance"
    llm_like = make_record("logistics", 2)
    del llm_like["meta"]["instance"]
    (tmp_path / "llm" / "records").mkdir(parents=True)
    (tmp_path / "llm" / "records" / "x.jsonl").write_text(json.dumps(llm_like) + "\n")
    with pytest.raises(UserError, match="no record carries a structured instance"):
        make_dpo(tmp_path / "llm", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
