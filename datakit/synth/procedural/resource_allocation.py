"""Resource allocation: pick projects under two capacities (engineers, budget) for the most value.

Instance: projects `{"id": "P3", "name": "...", "engineers": 4, "budget_k": 3, "value": 9}` and
capacities `{"engineers": 10, "budget_k": 8}`. Solver: exact dynamic programming over the projects that
keeps every non-dominated partial plan (engineers used, budget used, value). Checker (independent):
the selection is feasible, its totals are what the plan claims, and its value equals the optimum from
a dense capacity table (numpy), a different exact method.
"""

from __future__ import annotations

import random

import numpy as np

from datakit.synth.procedural.common import FlawNotApplicable, Solution, as_int

NAME = "resource_allocation"
OBJECTIVE = "value"
FLAWS = ("arithmetic_slip", "over_allocated", "missed_constraint", "wrong_final_answer", "skipped_step")
# size: number of candidate projects; tightness: 1 - capacity / total demand (higher = fewer projects fit)
DIFFICULTY = {"easy": {"size": 5, "tightness": 0.4}, "medium": {"size": 8, "tightness": 0.5}, "hard": {"size": 12, "tightness": 0.6}}
LIMITS = {"size": (2, 16), "tightness": (0.05, 0.95)}  # exact optimum stays fast up to 16 projects

PROJECT_NAMES = [
    "migrate to the new cloud region", "rewrite the billing system", "add single sign-on", "build a recommendation engine",
    "launch the mobile app", "cut API latency", "automate on-call", "open a data warehouse", "add offline mode",
    "localize into five languages", "build a partner API", "harden security", "redesign onboarding", "add usage analytics",
    "build a plugin system", "replace the search engine", "add payments in new markets", "build a customer portal",
    "improve accessibility", "reduce cloud spend", "build a chat assistant", "upgrade the database", "add audit logs",
    "build a status page",
]


def make_instance(rng: random.Random, params: dict) -> dict:
    n, tight = params["size"], params["tightness"]
    names = rng.sample(PROJECT_NAMES, n) if n <= len(PROJECT_NAMES) else [f"initiative {i}" for i in range(n)]
    projects = [{"id": f"P{i + 1}", "name": names[i], "engineers": rng.randint(1, 6), "budget_k": rng.randint(1, 6),
                 "value": rng.randint(2, 20)} for i in range(n)]
    cap = {"engineers": max(1, int(sum(p["engineers"] for p in projects) * (1 - tight))),
           "budget_k": max(1, int(sum(p["budget_k"] for p in projects) * (1 - tight)))}
    return {"projects": projects, "capacity": cap}


def render_problem(inst: dict) -> str:
    c = inst["capacity"]
    lines = [f"A company can staff {c['engineers']} engineers and spend ${c['budget_k']}k this quarter. "
             "Choose projects to maximize total value without exceeding either limit (each project is all or nothing):"]
    for p in inst["projects"]:
        lines.append(f"- {p['id']}: {p['name']}, needs {p['engineers']} engineers and ${p['budget_k']}k, value {p['value']}")
    lines.append('End the answer with a line PLAN: {"selected": [...], "engineers": N, "budget_k": N, "value": N}.')
    return "\n".join(lines)


def task_title(inst: dict) -> str:
    return f"Allocate engineers and budget across {len(inst['projects'])} projects for maximum value"


def solve(inst: dict, flaw: str | None = None, rng: random.Random | None = None) -> Solution:
    projects = inst["projects"]
    cap = dict(inst["capacity"])
    steps, flaw_step = [], None
    skip = None
    if flaw == "skipped_step":  # skip a project the optimum needs, so the flawed plan falls short
        needed = solve(inst).plan["selected"]
        if not needed:
            raise FlawNotApplicable("the optimum selects nothing")
        victim = rng.choice(needed)
        skip = next(i for i, p in enumerate(projects) if p["id"] == victim)
    if flaw == "missed_constraint":
        cap["budget_k"] = 10**6  # the flawed planner forgets the budget limit
    steps.append(f"Limits: {inst['capacity']['engineers']} engineers and ${inst['capacity']['budget_k']}k. Build partial "
                 "plans project by project, keeping only plans that fit and that no other plan beats on all of "
                 "engineers, budget and value.")
    if flaw == "missed_constraint":
        steps[0] = (f"Limit: {inst['capacity']['engineers']} engineers. Build partial plans project by project, keeping "
                    "only plans that fit and that no other plan beats on both engineers and value.")
        flaw_step = 1
    # state: (engineers, budget, value, chosen indices)
    states = [(0, 0, 0, ())]
    for i, p in enumerate(projects):
        if i == skip:
            flaw_step = len(steps) + 1
            continue
        new = list(states)
        for e, b, v, ch in states:
            if e + p["engineers"] <= cap["engineers"] and b + p["budget_k"] <= cap["budget_k"]:
                new.append((e + p["engineers"], b + p["budget_k"], v + p["value"], ch + (i,)))
        states = _pareto(new)
        best = max(states, key=lambda s: (s[2], -s[0], -s[1]))
        head = (f"{p['id']} needs {p['engineers']} engineers and ${p['budget_k']}k for value {p['value']}. ")
        if best[3] and best[3][-1] == i:
            e0, b0, v0 = best[0] - p["engineers"], best[1] - p["budget_k"], best[2] - p["value"]
            sel = ", ".join(projects[j]["id"] for j in best[3])
            head += (f"Adding it to the best fitting plan gives {{{sel}}}: {e0} + {p['engineers']} = {best[0]} engineers, "
                     f"{b0} + {p['budget_k']} = {best[1]} $k, value {v0} + {p['value']} = {best[2]}.")
        else:
            sel = ", ".join(projects[j]["id"] for j in best[3]) or "nothing"
            head += f"It does not improve the best plan, which stays {{{sel}}} with value {best[2]}."
        steps.append(head + f" {len(states)} plans kept.")
    best = max(states, key=lambda s: (s[2], -s[0], -s[1]))
    chosen = list(best[3])
    if flaw == "over_allocated":
        extra = [i for i in range(len(projects)) if i not in chosen
                 and (best[0] + projects[i]["engineers"] > cap["engineers"] or best[1] + projects[i]["budget_k"] > cap["budget_k"])]
        if not extra:
            raise FlawNotApplicable("every project fits; nothing to over-allocate")
        chosen = sorted(chosen + [max(extra, key=lambda i: projects[i]["value"])])
    sel = [projects[i] for i in chosen]
    tot = {k: sum(p[k] for p in sel) for k in ("engineers", "budget_k", "value")}
    slip_key = rng.choice(["engineers", "budget_k", "value"]) if flaw == "arithmetic_slip" else None
    if slip_key:
        if len(sel) < 2:
            raise FlawNotApplicable("a single project has no sum to slip in")
        tot[slip_key] += rng.choice([-1, 1, 2])
        flaw_step = len(steps) + 1

    def sums(k):
        return " + ".join(str(p[k]) for p in sel) + f" = {tot[k]}" if len(sel) > 1 else f"{tot[k]}"

    if flaw == "over_allocated":
        flaw_step = len(steps) + 1
    steps.append(f"Best plan: {', '.join(p['id'] for p in sel) or 'nothing'}. Engineers {sums('engineers')} <= "
                 f"{inst['capacity']['engineers']}; budget {sums('budget_k')} <= {inst['capacity']['budget_k']}; "
                 f"value {sums('value')}.")
    steps.append("Check: both limits hold, and no kept plan has a higher value, so this value is the optimum.")
    plan = {"selected": [p["id"] for p in sel], **tot}
    return Solution(steps, plan, summary(plan), flaw_step)


def summary(plan: dict) -> str:
    return (f"Fund {', '.join(plan['selected']) or 'no project'}: {plan['engineers']} engineers, "
            f"${plan['budget_k']}k, total value {plan['value']}.")


def _pareto(states: list) -> list:
    """Drop partial plans that another plan beats or ties on engineers, budget and value."""
    states.sort(key=lambda s: (-s[2], s[0], s[1]))
    kept = []
    for s in states:
        if not any(k[0] <= s[0] and k[1] <= s[1] and k[2] >= s[2] for k in kept):
            kept.append(s)
    return kept


def best_value(inst: dict) -> int:
    """Optimum value by a dense table over (engineers, budget): the checker's own exact method."""
    ce, cb = inst["capacity"]["engineers"], inst["capacity"]["budget_k"]
    table = np.zeros((ce + 1, cb + 1), dtype=np.int64)
    for p in inst["projects"]:
        e, b, v = p["engineers"], p["budget_k"], p["value"]
        if e > ce or b > cb:
            continue
        cand = table[: ce + 1 - e, : cb + 1 - b] + v
        np.maximum(table[e:, b:], cand, out=table[e:, b:])
    return int(table[ce, cb])


def check(inst: dict, plan: dict) -> list[str]:
    """Problems with `plan` for `inst` ([] when the plan is correct). Independent of `solve`."""
    by_id = {p["id"]: p for p in inst["projects"]}
    try:
        sel = [str(x) for x in plan["selected"]]
        claimed = {k: as_int(plan[k], k) for k in ("engineers", "budget_k", "value")}
    except (KeyError, TypeError, ValueError) as e:
        return [f"plan: malformed ({e})"]
    errors = []
    if len(set(sel)) != len(sel) or any(s not in by_id for s in sel):
        return ["selected projects repeat or are unknown"]
    for k in ("engineers", "budget_k", "value"):
        real = sum(by_id[s][k] for s in sel)
        if real != claimed[k]:
            errors.append(f"{k}: the plan claims {claimed[k]} but the selected projects sum to {real}")
        if k != "value" and real > inst["capacity"][k]:
            errors.append(f"over-allocated: {k} {real} exceeds the limit {inst['capacity'][k]}")
    opt = best_value(inst)
    real_value = sum(by_id[s]["value"] for s in sel)
    if real_value < opt:
        errors.append(f"not optimal: value {real_value} but {opt} is reachable")
    return errors
