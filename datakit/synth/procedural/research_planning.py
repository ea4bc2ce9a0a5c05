"""Research timelines: one team works through tasks in sequence, with risks, prerequisites and deadlines.

Instance: tasks `{"id": "R2", "name": "...", "weeks": 3, "risk": "high", "after": ["R1"], "deadline": 14}`
(deadline may be null). Risky tasks get contingency weeks (low +0, medium +1, high +2). Solver:
modified deadlines (a task must end early enough for its successors: d'_i = min(d_i, d'_j - p_j)),
then earliest-modified-deadline-first among ready tasks, which meets every deadline whenever any order
does (1|prec|Lmax). Checker (independent): the order is a permutation that respects prerequisites,
the team never runs two tasks at once, each finish is start + weeks + contingency, every deadline
is met and the claimed end week is the last finish.
"""

from __future__ import annotations

import random

from datakit.synth.procedural.common import FlawNotApplicable, Solution, as_int

NAME = "research_planning"
OBJECTIVE = "end_week"
FLAWS = ("arithmetic_slip", "dependency_order", "over_allocated", "missed_constraint", "wrong_final_answer", "skipped_step")
CONTINGENCY = {"low": 0, "medium": 1, "high": 2}
# size: number of tasks; tightness: how little slack deadlines leave (0 = loose, 1 = no slack at all)
DIFFICULTY = {"easy": {"size": 4, "tightness": 0.3}, "medium": {"size": 7, "tightness": 0.6}, "hard": {"size": 10, "tightness": 0.85}}
LIMITS = {"size": (2, 30), "tightness": (0.0, 1.0)}

TASK_NAMES = [
    "literature review", "write the proposal", "ethics approval", "collect the dataset", "clean the data",
    "build the baseline", "run pilot experiments", "run the main experiments", "ablation study", "statistical analysis",
    "write the paper draft", "internal review", "prepare figures", "release the code", "submit to the venue",
    "recruit participants", "design the survey", "train the large model", "evaluate on benchmarks", "write the rebuttal",
    "present at group meeting", "replicate prior work", "hyperparameter sweep", "error analysis", "write the thesis chapter",
    "apply for compute", "build the simulator", "field study", "user interviews", "prepare the poster",
]


def make_instance(rng: random.Random, params: dict) -> dict:
    n, tight = params["size"], params["tightness"]
    labels = [f"R{i}" for i in range(1, n + 1)]
    names = rng.sample(TASK_NAMES, n) if n <= len(TASK_NAMES) else [f"work item {i}" for i in range(n)]
    tasks = []
    for j in range(n):
        after = sorted({labels[i] for i in range(j) if rng.random() < 0.3}, key=_key)[:2]
        risk = rng.choices(["low", "medium", "high"], weights=[3, 2, 1])[0]
        tasks.append({"id": labels[j], "name": names[j], "weeks": rng.randint(1, 6), "risk": risk, "after": after,
                      "deadline": None})
    # deadlines from a random feasible order, loosened by (1 - tightness): the instance is always solvable
    order, done, t = [], set(), 0
    remaining = list(range(n))
    while remaining:
        ready = [i for i in remaining if all(a in done for a in tasks[i]["after"])]
        i = rng.choice(ready)
        remaining.remove(i)
        done.add(labels[i])
        t += tasks[i]["weeks"] + CONTINGENCY[tasks[i]["risk"]]
        order.append((i, t))
    total = t
    for i, fin in order:
        if rng.random() < 0.5 or i == order[-1][0]:
            slack = int(round((1 - tight) * rng.uniform(0.2, 0.6) * total))
            tasks[i]["deadline"] = fin + slack
    perm = labels[:]
    rng.shuffle(perm)  # ids are not the intended order
    rename = dict(zip(labels, perm))
    for task in tasks:
        task["id"] = rename[task["id"]]
        task["after"] = sorted((rename[a] for a in task["after"]), key=_key)
    tasks.sort(key=lambda x: _key(x["id"]))
    return {"tasks": tasks, "unit": "weeks", "contingency": dict(CONTINGENCY)}


def _key(label: str) -> int:
    return int(label[1:])


def render_problem(inst: dict) -> str:
    c = inst["contingency"]
    lines = [f"A research team works on one task at a time and has {len(inst['tasks'])} tasks. Each task has a risk level; "
             f"plan contingency of +{c['low']} weeks for low, +{c['medium']} for medium and +{c['high']} for high risk. "
             "A task can start only after its prerequisites are finished. Week 0 is the start."]
    for t in inst["tasks"]:
        pre = ", ".join(t["after"]) if t["after"] else "none"
        due = f"must finish by week {t['deadline']}" if t["deadline"] is not None else "no deadline"
        lines.append(f"- {t['id']}: {t['name']}, {t['weeks']} week{'s' if t['weeks'] != 1 else ''}, {t['risk']} risk, prerequisites: {pre}, {due}")
    lines.append("Give an order that meets every deadline with the start and finish week of each task (contingency "
                 'included). End the answer with a line PLAN: {"order": [...], "start": {...}, "finish": {...}, "end_week": N}.')
    return "\n".join(lines)


def task_title(inst: dict) -> str:
    return f"Plan a {len(inst['tasks'])}-task research timeline with risks and deadlines"


def solve(inst: dict, flaw: str | None = None, rng: random.Random | None = None) -> Solution:
    tasks = {t["id"]: t for t in inst["tasks"]}
    cont = inst["contingency"]
    eff = {k: t["weeks"] + cont[t["risk"]] for k, t in tasks.items()}
    children = {k: [] for k in tasks}
    for k, t in tasks.items():
        for a in t["after"]:
            children[a].append(k)
    steps, flaw_step = [], None
    risky = [k for k in sorted(tasks, key=_key) if cont[tasks[k]["risk"]] > 0]
    forgot = None
    if flaw == "missed_constraint":
        if not risky:
            raise FlawNotApplicable("no risky task whose contingency could be forgotten")
        forgot = rng.choice(risky)
    parts = []
    for k in sorted(tasks, key=_key):
        if k == forgot:
            continue
        if cont[tasks[k]["risk"]] > 0:
            parts.append(f"{k} {tasks[k]['weeks']} + {cont[tasks[k]['risk']]} = {eff[k]}")
    steps.append("Add contingency to risky tasks (weeks + contingency): " + ("; ".join(parts) if parts else "none") +
                 "; the other tasks keep their length.")
    if forgot:
        eff[forgot] = tasks[forgot]["weeks"]
        flaw_step = 1
    # modified deadlines, latest-first over a reverse topological order
    big = 10**6
    mod = {k: (t["deadline"] if t["deadline"] is not None else big) for k, t in tasks.items()}
    notes = []
    for k in reversed(_topo(tasks)):
        for c in children[k]:
            if mod[c] < big and mod[c] - eff[c] < mod[k]:
                old = mod[k]
                mod[k] = mod[c] - eff[c]
                notes.append(f"{k} must end by {mod[c]} - {eff[c]} = {mod[k]} so that {c} fits"
                             + (f" (tighter than its own {old})" if old < big else ""))
    steps.append("Tighten deadlines backwards through prerequisites: " + ("; ".join(notes) if notes else
                                                                          "no prerequisite needs an earlier deadline") + ".")
    done, order, start, finish, t = set(), [], {}, {}, 0
    remaining = set(tasks)
    skip = rng.choice(sorted(tasks, key=_key)) if flaw == "skipped_step" else None
    slip_at = rng.randrange(len(tasks)) if flaw == "arithmetic_slip" else None
    overlap_at = rng.randrange(1, len(tasks)) if flaw == "over_allocated" else None
    if flaw == "over_allocated" and len(tasks) < 2:
        raise FlawNotApplicable("one task cannot overlap")
    swap_at = None
    if flaw == "dependency_order":
        if not any(t_["after"] for t_ in tasks.values()):
            raise FlawNotApplicable("no prerequisites to violate")
    prev_start = 0
    while remaining:
        ready = sorted((k for k in remaining if all(a in done for a in tasks[k]["after"])), key=lambda k: (mod[k], _key(k)))
        if flaw == "dependency_order" and swap_at is None:
            blocked = sorted((k for k in remaining if k not in ready), key=lambda k: (mod[k], _key(k)))
            if blocked:
                swap_at = len(steps) + 1
                pick = blocked[0]
                ready = [pick] + ready
        k = ready[0]
        remaining.discard(k)
        done.add(k)
        if k == skip:
            flaw_step = len(steps) + 1
            continue
        due = tasks[k]["deadline"]
        s = t
        if len(order) == overlap_at:
            s = prev_start  # the team is booked twice
            flaw_step = len(steps) + 1
        f = s + eff[k]
        if len(order) == slip_at:
            f += rng.choice([-1, 1, 2]) if eff[k] > 1 else rng.choice([1, 2])
            flaw_step = len(steps) + 1
        pick = ", the earliest deadline" if mod[k] < big else ", no deadline is pressing"
        listing = ", ".join(f"{r} (due {mod[r] if mod[r] < big else '-'})" for r in ready)
        text = f"Ready: {listing}. Take {k} ({tasks[k]['name']}){pick}: weeks {s} to {s} + {eff[k]} = {f}"
        if due is not None:
            text += (f", deadline {due} met with {due} - {f} = {due - f} weeks to spare." if f <= due
                     else f", deadline {due} missed by {f} - {due} = {f - due} weeks.")
        else:
            text += "."
        steps.append(text)
        order.append(k)
        start[k], finish[k] = s, f
        prev_start, t = s, f
    if swap_at is not None:
        flaw_step = swap_at
    end = max(finish.values())
    steps.append(f"All tasks are placed; the last one finishes in week {end}.")
    dues = [k for k in order if tasks[k]["deadline"] is not None]
    steps.append("Check: each task starts when the previous one ends, every prerequisite comes earlier, and the "
                 f"{len(dues)} deadlines are met.")
    plan = {"order": order, "start": start, "finish": finish, "end_week": end}
    return Solution(steps, plan, summary(plan), flaw_step)


def summary(plan: dict) -> str:
    return f"Do the tasks in the order {', '.join(plan['order'])}; the timeline ends in week {plan['end_week']} with every deadline met."


def _topo(tasks: dict) -> list[str]:
    seen, out = set(), []

    def visit(k):
        if k in seen:
            return
        seen.add(k)
        for a in tasks[k]["after"]:
            visit(a)
        out.append(k)

    for k in sorted(tasks, key=_key):
        visit(k)
    return out


def check(inst: dict, plan: dict) -> list[str]:
    """Problems with `plan` for `inst` ([] when the plan is correct). Independent of `solve`."""
    tasks = {t["id"]: t for t in inst["tasks"]}
    cont = inst["contingency"]
    try:
        order = [str(k) for k in plan["order"]]
        start = {k: as_int(v, f"start[{k}]") for k, v in dict(plan["start"]).items()}
        finish = {k: as_int(v, f"finish[{k}]") for k, v in dict(plan["finish"]).items()}
        end = as_int(plan["end_week"], "end_week")
    except (KeyError, TypeError, ValueError) as e:
        return [f"plan: malformed ({e})"]
    if sorted(order) != sorted(tasks) or set(start) != set(tasks) or set(finish) != set(tasks):
        missing = sorted(set(tasks) - set(order) - set(start), key=_key)
        return [f"the plan does not schedule every task exactly once (missing: {', '.join(missing) or '-'})"]
    errors = []
    pos = {k: i for i, k in enumerate(order)}
    for k, t in tasks.items():
        for a in t["after"]:
            if pos[a] > pos[k]:
                errors.append(f"dependency: {k} is done before its prerequisite {a}")
        need = t["weeks"] + cont[t["risk"]]
        if finish[k] - start[k] != need:
            errors.append(f"{k} runs weeks {start[k]}-{finish[k]} but needs {need} weeks with contingency")
        if t["deadline"] is not None and finish[k] > t["deadline"]:
            errors.append(f"deadline: {k} finishes week {finish[k]} after its deadline {t['deadline']}")
    clock = 0
    for k in order:
        if start[k] < clock:
            errors.append(f"over-allocated: {k} starts week {start[k]} while the team is busy until week {clock}")
        clock = max(clock, finish[k])
    if end != max(finish.values()):
        errors.append(f"end_week {end} but the last task finishes week {max(finish.values())}")
    return errors
