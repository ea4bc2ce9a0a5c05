"""Multi-agent coordination: conflict-free paths for several robots on a grid.

Instance: a grid (rows of '.' free and '#' blocked), robots `{"id": "R1", "start": [r, c], "goal": [r, c]}`.
Each time step a robot moves to a 4-neighbour or waits; after its last step it stays on its goal. Two
robots may never share a cell at the same time nor swap cells. Solver: prioritized planning; robots in
order, each by breadth-first search in space-time around the cells the earlier robots reserved.
Checker (independent): simulates every time step: legal moves, free cells, start and goal, no vertex
or swap conflict, and the claimed makespan and sum of costs; each path is at least as long as the
robot's shortest path on the empty grid.
"""

from __future__ import annotations

import heapq
import random
from collections import deque

from datakit.synth.procedural.common import FlawNotApplicable, Solution, as_int

NAME = "multi_agent"
OBJECTIVE = "sum_of_costs"
FLAWS = ("arithmetic_slip", "missed_constraint", "wrong_final_answer", "skipped_step")
# size: grid side; tightness: robots per free cell / share of blocked cells (higher = more crowded)
DIFFICULTY = {"easy": {"size": 5, "tightness": 0.3}, "medium": {"size": 6, "tightness": 0.5}, "hard": {"size": 8, "tightness": 0.7}}
LIMITS = {"size": (3, 12), "tightness": (0.0, 1.0)}
MOVES = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


def make_instance(rng: random.Random, params: dict) -> dict:
    n, tight = params["size"], params["tightness"]
    n_robots = max(2, round(2 + tight * (n - 2)))
    for _ in range(100):
        grid = [["#" if rng.random() < 0.1 + 0.15 * tight else "." for _ in range(n)] for _ in range(n)]
        free = [(r, c) for r in range(n) for c in range(n) if grid[r][c] == "."]
        if len(free) < 2 * n_robots:
            continue
        cells = rng.sample(free, 2 * n_robots)
        robots = [{"id": f"R{i + 1}", "start": list(cells[2 * i]), "goal": list(cells[2 * i + 1])} for i in range(n_robots)]
        inst = {"grid": ["".join(row) for row in grid], "robots": robots}
        nbrs = _neighbours(inst["grid"])
        if all(_bfs_len(inst["grid"], r["start"], r["goal"], nbrs) is not None for r in robots):
            return inst  # prioritized planning may still fail: solve() raises FlawNotApplicable, the caller retries
    raise FlawNotApplicable("could not place robots with conflict-free paths")


def render_problem(inst: dict) -> str:
    lines = [f"{len(inst['robots'])} robots share a {len(inst['grid'])}x{len(inst['grid'][0])} warehouse grid "
             "('#' is blocked; cells are [row, column] from [0, 0] at the top left):"]
    lines += ["  " + row for row in inst["grid"]]
    for r in inst["robots"]:
        lines.append(f"- {r['id']}: from {r['start']} to {r['goal']}")
    lines.append("Each time step a robot moves up, down, left or right, or waits; after arriving it stays on its goal. "
                 "Two robots may never be in the same cell at the same time or swap cells. Plan conflict-free paths "
                 'and end the answer with a line PLAN: {"paths": {"R1": [[r, c], ...], ...}, "makespan": N, "sum_of_costs": N}.')
    return "\n".join(lines)


def task_title(inst: dict) -> str:
    return f"Coordinate {len(inst['robots'])} robots on a {len(inst['grid'])}x{len(inst['grid'][0])} grid without collisions"


def _bfs_len(grid, start, goal, nbrs=None):
    """Moves on the empty grid from start to goal (None if unreachable)."""
    if nbrs is None:
        n, m = len(grid), len(grid[0])
        nbrs = {}
        for r in range(n):
            for c in range(m):
                nbrs[(r, c)] = [(r + dr, c + dc) for dr, dc in MOVES[1:]
                                if 0 <= r + dr < n and 0 <= c + dc < m and grid[r + dr][c + dc] == "."]
    start, goal = tuple(start), tuple(goal)
    seen, q = {start: 0}, deque([start])
    while q:
        cell = q.popleft()
        if cell == goal:
            return seen[cell]
        for nxt in nbrs[cell]:
            if nxt not in seen:
                seen[nxt] = seen[cell] + 1
                q.append(nxt)
    return None


def _neighbours(grid) -> dict:
    """cell -> cells reachable in one step (itself first: waiting), free cells only."""
    n, m = len(grid), len(grid[0])
    out = {}
    for r in range(n):
        for c in range(m):
            if grid[r][c] == ".":
                out[(r, c)] = [(r + dr, c + dc) for dr, dc in MOVES
                               if 0 <= r + dr < n and 0 <= c + dc < m and grid[r + dr][c + dc] == "."]
    return out


def _plan_one(grid, start, goal, vertex, edge, parked, horizon, nbrs=None):
    """Space-time A*: earliest arrival that avoids reserved (cell, t), reserved swaps and robots parked on goals.

    States are (cell, t), so every path to a state costs t; the heuristic is the cell's distance to the goal
    on the empty grid (admissible and consistent), which keeps the search to a narrow band of states.
    """
    nbrs = nbrs or _neighbours(grid)
    start, goal = tuple(start), tuple(goal)
    last_busy = max((t for (c, t) in vertex if c == goal), default=-1)
    h = {goal: 0}
    q = deque([goal])
    while q:
        cell = q.popleft()
        for nxt in nbrs[cell]:
            if nxt not in h:
                h[nxt] = h[cell] + 1
                q.append(nxt)
    if start not in h:
        return None
    prev = {(start, 0): None}
    heap = [(h[start], 0, start)]
    while heap:
        _, t, cell = heapq.heappop(heap)
        if cell == goal and t > last_busy:
            path = [cell]
            key = (cell, t)
            while prev[key] is not None:
                key = prev[key]
                path.append(key[0])
            return path[::-1]
        if t >= horizon:
            continue
        for nxt in nbrs[cell]:
            if (nxt, t + 1) in vertex or (nxt, cell, t) in edge or (nxt in parked and t + 1 >= parked[nxt]):
                continue
            if (nxt, t + 1) not in prev:
                prev[(nxt, t + 1)] = (cell, t)
                heapq.heappush(heap, (t + 1 + h[nxt], t + 1, nxt))
    return None


def solve(inst: dict, flaw: str | None = None, rng: random.Random | None = None) -> Solution:
    grid = inst["grid"]
    horizon = 2 * len(grid) * len(grid[0])
    vertex, edge, parked = set(), set(), {}
    nbrs = _neighbours(grid)
    steps = [f"Plan the robots one at a time in the order {', '.join(r['id'] for r in inst['robots'])}; each planned "
             "path reserves its cell at every time step, and a robot that has arrived keeps its goal cell."]
    flaw_step = None
    careless = rng.randrange(1, len(inst["robots"])) if flaw == "missed_constraint" else None
    paths = {}
    for i, r in enumerate(inst["robots"]):
        free_len = _bfs_len(grid, r["start"], r["goal"], nbrs)
        if i == careless:
            path = _plan_one(grid, r["start"], r["goal"], set(), set(), {}, horizon, nbrs)
            flaw_step = len(steps) + 1
        else:
            path = _plan_one(grid, r["start"], r["goal"], vertex, edge, parked, horizon, nbrs)
        if path is None:
            raise FlawNotApplicable(f"prioritized planning found no path for {r['id']}")
        cost = len(path) - 1
        waits = sum(1 for a, b in zip(path, path[1:]) if a == b)
        cells = " ".join(f"[{c[0]},{c[1]}]" for c in path)
        text = (f"{r['id']} from {list(r['start'])} to {list(r['goal'])}: the shortest free route has {free_len} moves; "
                f"searching over (cell, time) around the reserved cells gives {cells}, arriving at t={cost}")
        if cost > free_len:
            text += f" ({cost} - {free_len} = {cost - free_len} extra steps: {waits} waits to let earlier robots pass)."
        else:
            text += " (no delay)."
        steps.append(text)
        paths[r["id"]] = [list(c) for c in path]
        for t, c in enumerate(path):
            vertex.add((c, t))
            if t:
                edge.add((path[t - 1], c, t - 1))
        parked[path[-1]] = len(path) - 1
    if flaw == "skipped_step":
        movers = [k for k, p in paths.items() if len(p) >= 3]
        if not movers:
            raise FlawNotApplicable("no path long enough to skip a cell")
        k = rng.choice(movers)
        j = rng.randrange(1, len(paths[k]) - 1)
        paths[k] = paths[k][:j] + paths[k][j + 1:]
        idx = 1 + [r["id"] for r in inst["robots"]].index(k)
        cells = " ".join(f"[{c[0]},{c[1]}]" for c in paths[k])
        steps[idx] = steps[idx].split(" gives ")[0] + f" gives {cells}, arriving at t={len(paths[k]) - 1}."
        flaw_step = idx + 1
    costs = [len(p) - 1 for p in paths.values()]
    soc = sum(costs)
    if flaw == "arithmetic_slip":
        if len(costs) < 2:
            raise FlawNotApplicable("one robot has no sum")
        soc += rng.choice([-1, 1, 2])
        flaw_step = len(steps) + 1
    makespan = max(costs)
    steps.append(f"Makespan = max({', '.join(map(str, costs))}) = {makespan}; sum of costs = "
                 f"{' + '.join(map(str, costs))} = {soc}.")
    steps.append(f"Check every time step from 0 to {makespan}: no two robots share a cell and no two swap cells.")
    plan = {"paths": paths, "makespan": makespan, "sum_of_costs": soc}
    return Solution(steps, plan, summary(plan), flaw_step)


def summary(plan: dict) -> str:
    return (f"All {len(plan['paths'])} robots reach their goals without conflicts by t={plan['makespan']} "
            f"(sum of costs {plan['sum_of_costs']}).")


def check(inst: dict, plan: dict) -> list[str]:
    """Problems with `plan` for `inst` ([] when the plan is correct). Independent of `solve`."""
    grid = inst["grid"]
    n, m = len(grid), len(grid[0])
    try:
        paths = {k: [tuple(as_int(x, f"{k} cell") for x in c) for c in v] for k, v in dict(plan["paths"]).items()}
        makespan = as_int(plan["makespan"], "makespan")
        soc = as_int(plan["sum_of_costs"], "sum_of_costs")
    except (KeyError, TypeError, ValueError) as e:
        return [f"plan: malformed ({e})"]
    robots = {r["id"]: r for r in inst["robots"]}
    if set(paths) != set(robots):
        return [f"paths are given for {sorted(paths)} but the robots are {sorted(robots)}"]
    errors = []
    free_nbrs = {(r, c): [(r + dr, c + dc) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
                          if 0 <= r + dr < n and 0 <= c + dc < m and grid[r + dr][c + dc] == "."]
                 for r in range(n) for c in range(m)}
    for k, p in paths.items():
        r = robots[k]
        if not p or p[0] != tuple(r["start"]) or p[-1] != tuple(r["goal"]):
            errors.append(f"{k} must go from {r['start']} to {r['goal']}")
            continue
        for t, (a, b) in enumerate(zip(p, p[1:])):
            if len(b) != 2 or not (0 <= b[0] < n and 0 <= b[1] < m) or grid[b[0]][b[1]] != ".":
                errors.append(f"{k} enters blocked or outside cell {list(b)} at t={t + 1}")
            elif abs(a[0] - b[0]) + abs(a[1] - b[1]) > 1:
                errors.append(f"{k} jumps from {list(a)} to {list(b)} at t={t + 1}")
        if len(p) - 1 < (_bfs_len(grid, r["start"], r["goal"], free_nbrs) or 0):
            errors.append(f"{k} arrives faster than its shortest route allows")
    if errors:
        return errors
    horizon = max(len(p) for p in paths.values())

    def at(p, t):
        return p[min(t, len(p) - 1)]

    for t in range(horizon):
        seen = {}
        for k, p in paths.items():
            c = at(p, t)
            if c in seen:
                errors.append(f"conflict: {seen[c]} and {k} are both in {list(c)} at t={t}")
            seen[c] = k
        if t:
            for k1, p1 in paths.items():
                for k2, p2 in paths.items():
                    if k1 < k2 and at(p1, t) == at(p2, t - 1) and at(p2, t) == at(p1, t - 1) and at(p1, t) != at(p1, t - 1):
                        errors.append(f"conflict: {k1} and {k2} swap cells at t={t}")
    costs = [len(p) - 1 for p in paths.values()]
    if makespan != max(costs):
        errors.append(f"makespan {makespan} but the last robot arrives at t={max(costs)}")
    if soc != sum(costs):
        errors.append(f"sum_of_costs {soc} but the paths cost {sum(costs)}")
    return errors
