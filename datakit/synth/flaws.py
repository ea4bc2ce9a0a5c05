"""The catalog of typed flaws for DPO rejected answers, and the programmatic flaw maker.

Each flaw is one mistake a planner makes. For procedural records the domain's own solver makes the
mistake while running its real algorithm (`solve(instance, flaw=...)`), so the rejected trace reads
like a plausible plan that goes wrong at one step; `wrong_final_answer` is shared by every domain:
a correct trace whose final answer does not match it. For LLM records the same descriptions go into
the flaw prompt (synth/dpo.toml).
"""

from __future__ import annotations

import copy
import random

from datakit.synth.procedural.common import FlawNotApplicable, Solution

CATALOG = {
    "arithmetic_slip": "an arithmetic slip in one step (a sum or difference computed wrong) that the rest of the plan carries forward",
    "dependency_order": "a dependency-order violation: a task is done before one of its prerequisites",
    "over_allocated": "an over-allocated resource: the plan uses more of a resource than is available, or books a team twice",
    "missed_constraint": "a missed constraint: one stated constraint (a prerequisite, a limit, a closed road, another robot) is ignored",
    "wrong_final_answer": "a wrong final answer: the reasoning is right but the final answer states a different result",
    "skipped_step": "a skipped step: one task, project, stop or move is left out of the plan",
}


def domain_flaws(domain: str) -> tuple[str, ...]:
    """Flaws the procedural domain can make (every domain supports `wrong_final_answer`)."""
    from datakit.synth.procedural import DOMAINS

    mod = DOMAINS[domain]
    return tuple(dict.fromkeys([*mod.FLAWS, "wrong_final_answer"]))


def make_flawed(domain: str, instance: dict, flaw: str, rng: random.Random) -> Solution:
    """A solution of `instance` with exactly one `flaw`; FlawNotApplicable if this instance cannot have it."""
    from datakit.synth.procedural import DOMAINS

    mod = DOMAINS[domain]
    if flaw not in domain_flaws(domain):
        raise FlawNotApplicable(f"{domain} has no {flaw}")
    if flaw != "wrong_final_answer":
        return mod.solve(instance, flaw=flaw, rng=rng)
    sol = mod.solve(instance)
    plan = copy.deepcopy(sol.plan)
    value = plan[mod.OBJECTIVE]
    choices = [d for d in (-3, -2, -1, 1, 2, 3) if value + d >= 0]
    plan[mod.OBJECTIVE] = value + rng.choice(choices)
    return Solution(sol.steps, plan, mod.summary(plan), flaw_step=None, notes={"location": "answer"})
