"""Software project scheduling: tasks with durations and prerequisites (critical path method).

Instance: tasks `{"id": "T3", "name": "...", "duration": 4, "after": ["T1"]}` (unlimited people,
days as the unit). Solver: Kahn's topological order, forward pass for earliest start/finish, then
a walk back along zero-gap prerequisites for the critical path. Checker (independent of the solver):
every task present, each start equals the latest prerequisite finish (earliest start, so no
dependency is violated), the makespan is the longest path found by repeated edge relaxation, and
the critical path is a gap-free chain of prerequisites of that length.
"""

from __future__ import annotations

import random

from datakit.synth.procedural.common import FlawNotApplicable, Solution, as_int

NAME = "software_architecture"
OBJECTIVE = "makespan"
FLAWS = ("arithmetic_slip", "dependency_order", "missed_constraint", "wrong_final_answer", "skipped_step")
# size: number of tasks; tightness: how densely tasks depend on each other (0..1)
DIFFICULTY = {"easy": {"size": 5, "tightness": 0.3}, "medium": {"size": 8, "tightness": 0.35}, "hard": {"size": 12, "tightness": 0.4}}
LIMITS = {"size": (3, 40), "tightness": (0.05, 1.0)}

TASK_NAMES = [
    "design the data model", "write the API spec", "set up CI", "build the auth service", "build the billing service",
    "write the database migrations", "build the web frontend", "build the mobile client", "set up monitoring",
    "write integration tests", "load-test the API", "security review", "write the deployment scripts",
    "set up the message queue", "build the search index", "write user docs", "build the admin console",
    "migrate legacy data", "set up staging", "performance tuning", "build the notification service",
    "configure the CDN", "write the SDK", "accessibility audit", "design the cache layer", "set up feature flags",
    "build the reporting pipeline", "write runbooks", "set up backups", "plan the launch",
]


def make_instance(rng: random.Random, params: dict) -> dict:
    n, p = params["size"], params["tightness"]
    labels = [f"T{i}" for i in range(1, n + 1)]
    rng.shuffle(labels)  # label order is not the dependency order
    names = rng.sample(TASK_NAMES, n) if n <= len(TASK_NAMES) else [f"work package {i}" for i in range(n)]
    tasks = []
    for j in range(n):
        after = sorted({labels[i] for i in range(j) if rng.random() < p}, key=_key)[:3]
        tasks.append({"id": labels[j], "name": names[j], "duration": rng.randint(1, 9), "after": after})
    tasks.sort(key=lambda t: _key(t["id"]))
    return {"tasks": tasks, "unit": "days"}


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _key(label: str) -> int:
    return int(label[1:])


def render_problem(inst: dict) -> str:
    lines = [f"A software team must deliver {len(inst['tasks'])} tasks. Any number of tasks can run in parallel, "
             "but a task can only start when all of its prerequisites are finished. Durations are in days."]
    for t in inst["tasks"]:
        pre = ", ".join(t["after"]) if t["after"] else "none"
        lines.append(f"- {t['id']}: {t['name']}, {_days(t['duration'])}, prerequisites: {pre}")
    lines.append("Find the earliest start day of every task (day 0 is the first day), the shortest project length "
                 "(makespan) and a critical path. End the answer with a line "
                 'PLAN: {"start": {"T1": 0, ...}, "makespan": N, "critical_path": ["T..", ...]}.')
    return "\n".join(lines)


def task_title(inst: dict) -> str:
    return f"Schedule {len(inst['tasks'])} software tasks with dependencies (critical path)"


def solve(inst: dict, flaw: str | None = None, rng: random.Random | None = None) -> Solution:
    tasks = {t["id"]: t for t in inst["tasks"]}
    deps = {t["id"]: list(t["after"]) for t in inst["tasks"]}
    order = _topo_order(tasks, deps)
    flaw_step = None
    steps = [""]  # step 1 (the order) is filled in below, once a dependency_order flaw may have moved it
    skip_id = slip_at = None
    dropped: tuple[str, str] | None = None  # (task, prerequisite) the flawed solver ignores
    if flaw == "dependency_order" or flaw == "missed_constraint":
        dropped = _binding_edge(tasks, deps, order, rng)
        if flaw == "dependency_order":
            t, d = dropped
            order.remove(t)
            order.insert(order.index(d), t)  # t now comes before its prerequisite d
            flaw_step = 1
    if flaw == "skipped_step":
        skip_id = rng.choice(order)
    if flaw == "arithmetic_slip":
        slip_at = rng.randrange(len(order))
    steps[0] = ("Order the tasks so that every task comes after its prerequisites (repeatedly take a task whose "
                "prerequisites are all placed): " + ", ".join(order) + ".")
    start, finish = {}, {}
    for i, tid in enumerate(order):
        t = tasks[tid]
        if tid == skip_id:
            flaw_step = len(steps) + 1
            continue
        pre = [d for d in deps[tid] if d in finish]  # in a correct run every prerequisite is already done
        if dropped and dropped[0] == tid:
            pre = [d for d in pre if d != dropped[1]]
            if flaw == "missed_constraint":
                flaw_step = len(steps) + 1
        if pre:
            s = max(finish[d] for d in pre)
            waits = ", ".join(f"{d} (finishes day {finish[d]})" for d in pre)
            text = (f"{tid} ({t['name']}, {_days(t['duration'])}) waits for {waits}; earliest start = "
                    + (f"max({', '.join(str(finish[d]) for d in pre)}) = {s}" if len(pre) > 1 else f"day {s}"))
        else:
            s = 0
            text = f"{tid} ({t['name']}, {_days(t['duration'])}) has no prerequisites, so it starts on day 0"
        f = s + t["duration"]
        if i == slip_at:
            f += rng.choice([-2, -1, 1, 2]) if t["duration"] > 2 else rng.choice([1, 2])
            flaw_step = len(steps) + 1
        text += f"; finish = {s} + {t['duration']} = {f}."
        start[tid], finish[tid] = s, f
        steps.append(text)
    makespan = max(finish.values())
    ends = [str(finish[tid]) for tid in order if tid in finish]
    steps.append(f"The project ends when the last task finishes: makespan = max({', '.join(ends)}) = {makespan} days."
                 if len(ends) > 1 else f"The project ends when {order[0]} finishes: makespan = {makespan} days.")
    path = _critical_path(start, finish, deps, tasks, makespan)
    durs = [str(tasks[p]["duration"]) for p in path]
    steps.append("Walk back from a task that finishes on day "
                 f"{makespan}, each time to a prerequisite that finishes exactly when the next task starts: critical path "
                 + " -> ".join(path) + (f", durations {' + '.join(durs)} = {sum(int(d) for d in durs)}." if len(durs) > 1
                                        else f", duration {durs[0]}."))
    steps.append("Check: every task starts no earlier than all of its prerequisites finish, and no task could start earlier.")
    plan = {"start": dict(sorted(start.items(), key=lambda kv: _key(kv[0]))), "makespan": makespan, "critical_path": path}
    return Solution(steps, plan, summary(plan), flaw_step)


def summary(plan: dict) -> str:
    return (f"The project takes {plan['makespan']} days; the critical path is "
            f"{' -> '.join(plan['critical_path'])}.")


def _topo_order(tasks: dict, deps: dict) -> list[str]:
    indeg = {t: len(d) for t, d in deps.items()}
    children = {t: [] for t in tasks}
    for t, ds in deps.items():
        for d in ds:
            children[d].append(t)
    ready = sorted((t for t, k in indeg.items() if k == 0), key=_key)
    order = []
    while ready:
        t = ready.pop(0)
        order.append(t)
        for c in children[t]:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
        ready.sort(key=_key)
    return order


def _binding_edge(tasks, deps, order, rng) -> tuple[str, str]:
    """A (task, prerequisite) pair whose prerequisite alone sets the task's start (ignoring it moves the start)."""
    finish = {}
    candidates = []
    for tid in order:
        ds = deps[tid]
        s = max((finish[d] for d in ds), default=0)
        finish[tid] = s + tasks[tid]["duration"]
        for d in ds:
            if finish[d] == s and all(finish[o] < s for o in ds if o != d):
                candidates.append((tid, d))
    if not candidates:
        raise FlawNotApplicable("no prerequisite sets a start time")
    return rng.choice(candidates)


def _critical_path(start, finish, deps, tasks, makespan) -> list[str]:
    last = min((t for t in finish if finish[t] == makespan), key=_key)
    path = [last]
    while start[path[-1]] > 0:
        prev = [d for d in deps[path[-1]] if d in finish and finish[d] == start[path[-1]]]
        if not prev:
            break
        path.append(min(prev, key=_key))
    return path[::-1]


def check(inst: dict, plan: dict) -> list[str]:
    """Problems with `plan` for `inst` ([] when the plan is correct). Independent of `solve`."""
    dur = {t["id"]: t["duration"] for t in inst["tasks"]}
    deps = {t["id"]: t["after"] for t in inst["tasks"]}
    try:
        start = {k: as_int(v, f"start[{k}]") for k, v in dict(plan["start"]).items()}
        makespan = as_int(plan["makespan"], "makespan")
        path = list(plan["critical_path"])
    except (KeyError, TypeError, ValueError) as e:
        return [f"plan: malformed ({e})"]
    errors = []
    missing = sorted(set(dur) - set(start), key=_key)
    extra = sorted(set(start) - set(dur))
    if missing:
        errors.append(f"tasks missing from the schedule: {', '.join(missing)}")
    if extra:
        errors.append(f"unknown tasks in the schedule: {', '.join(extra)}")
    if errors:
        return errors
    for t, ds in deps.items():
        for d in ds:
            if start[t] < start[d] + dur[d]:
                errors.append(f"dependency: {t} starts day {start[t]} before its prerequisite {d} finishes (day {start[d] + dur[d]})")
        earliest = max((start[d] + dur[d] for d in ds), default=0)
        if start[t] > earliest:
            errors.append(f"{t} starts day {start[t]} but could start day {earliest}")
    real_end = max(start[t] + dur[t] for t in dur)
    if makespan != real_end:
        errors.append(f"makespan {makespan} but the schedule ends day {real_end}")
    # longest path by repeated relaxation (Bellman-Ford style), not the solver's topological pass
    est = {t: 0 for t in dur}
    for _ in range(len(dur)):
        changed = False
        for t, ds in deps.items():
            for d in ds:
                if est[d] + dur[d] > est[t]:
                    est[t], changed = est[d] + dur[d], True
        if not changed:
            break
    best = max(est[t] + dur[t] for t in dur)
    if makespan != best:
        errors.append(f"makespan {makespan} is not the shortest possible ({best})")
    if not path or any(p not in dur for p in path):
        errors.append("critical path is empty or names unknown tasks")
    else:
        if start[path[0]] != 0:
            errors.append(f"critical path starts at {path[0]}, which does not start on day 0")
        for a, b in zip(path, path[1:]):
            if a not in deps[b] or start[a] + dur[a] != start[b]:
                errors.append(f"critical path step {a} -> {b} is not a gap-free prerequisite")
        if start[path[-1]] + dur[path[-1]] != makespan:
            errors.append(f"critical path ends at {path[-1]}, which does not finish at the makespan")
    return errors
