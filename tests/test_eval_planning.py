"""Verified planning accuracy, proven on hand-made answers: the solver's plans score 100% valid, a broken
format scores 0%, a feasible-but-worse plan is valid and not optimal, and the eval split is disjoint."""

from __future__ import annotations

import random

import pytest

from datakit.errors import UserError
from datakit.eval.planning import (EVAL_SEED, RESERVED_SEED_FLOOR, evaluate, heldout_problems, instance_key, prove_disjoint, score,
                                   training_records)
from datakit.eval.stats import wilson
from datakit.synth.procedural import DOMAINS, generate, make_record
from datakit.synth.procedural.common import render_completion


@pytest.fixture(scope="module")
def problems():
    return heldout_problems(per_cell=2, difficulties=("easy", "medium"))


def by_reference(problems):
    ref = {p.prompt: p.reference for p in problems}
    return lambda prompts, n: [[ref[x]] * n for x in prompts]


def test_solver_answers_score_100_percent(problems):
    r = evaluate(problems, by_reference(problems), samples=3)
    assert r["n_problems"] == 20
    g = r["greedy"]["all"]
    assert g["valid"]["rate"] == 1.0 and g["format_error"]["rate"] == 0.0 and g["optimal"]["rate"] == 1.0
    assert g["optimal"]["n"] == 12  # 3 of the 5 domains' checkers know the optimum, 2 difficulties x 2 problems each
    assert r["greedy"]["logistics/easy"]["valid"]["k"] == 2
    assert r["pass_at_k"]["all"]["rate"] == 1.0 and r["pass_at_k"]["k"] == 3


@pytest.mark.parametrize("breakage", [
    lambda c: c.replace("</answer>", ""),                 # unterminated answer
    lambda c: c.replace("PLAN: ", "PLAN "),               # no PLAN line
    lambda c: c.replace("PLAN: {", "PLAN: {{"),           # not JSON
    lambda c: c.split("<answer>")[0],                     # thinking only
])
def test_broken_format_scores_zero(problems, breakage):
    ref = {p.prompt: breakage(p.reference) for p in problems}
    g = evaluate(problems, lambda prompts, n: [[ref[x]] * n for x in prompts])["greedy"]["all"]
    assert g["valid"]["rate"] == 0.0 and g["format_error"]["rate"] == 1.0 and g["optimal"]["rate"] == 0.0


def test_feasible_but_worse_is_valid_not_optimal():
    mod = DOMAINS["resource_allocation"]
    rec = make_record("resource_allocation", 0, seed=EVAL_SEED, difficulty="medium")
    inst = rec["meta"]["instance"]
    worse = mod.solve(inst, flaw="skipped_step", rng=random.Random(0))
    s = score("resource_allocation", inst, render_completion(worse.thinking, worse.answer))
    assert s.format_ok and s.valid and s.optimal is False and any("not optimal" in e for e in s.errors)
    over = mod.solve(inst, flaw="over_allocated", rng=random.Random(0))
    s = score("resource_allocation", inst, render_completion(over.thinking, over.answer))
    assert s.format_ok and not s.valid


def test_domains_without_a_known_optimum_report_none():
    rec = make_record("multi_agent", 0, seed=EVAL_SEED, difficulty="easy")
    s = score("multi_agent", rec["meta"]["instance"], render_completion(rec["thinking"], rec["answer"]))
    assert s.valid and s.optimal is None


def test_eval_seeds_are_refused_for_training_and_the_split_is_proven(tmp_path, problems):
    with pytest.raises(UserError, match="reserved for eval"):
        generate(tmp_path / "x", count=1, seed=RESERVED_SEED_FLOOR, progress=False)
    generate(tmp_path / "train", count=30, seed=0, progress=False)
    recs = training_records([tmp_path / "train"])
    assert len(recs) == 30
    assert prove_disjoint(problems, recs) == {"seed_floor": RESERVED_SEED_FLOOR, "training_records_checked": 30, "overlap": 0}
    # a training set that does contain an eval problem is caught, by instance and by text
    leaked = {"domain": problems[0].domain, "problem": "x", "meta": {"instance": problems[0].instance}}
    with pytest.raises(UserError, match="also training records"):
        prove_disjoint(problems, [*recs, leaked])
    assert instance_key(problems[0].domain, problems[0].instance) != instance_key(problems[1].domain, problems[1].instance)
    with pytest.raises(UserError, match="training range"):
        heldout_problems(1, seed=0)


def test_wilson_interval():
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and 0.27 < hi < 0.29  # 0 of 10 still allows ~28%
    lo, hi = wilson(10, 10)
    assert hi == 1.0 and 0.71 < lo < 0.73
    lo, hi = wilson(50, 100)
    assert lo < 0.5 < hi and abs((lo + hi) / 2 - 0.5) < 1e-9
