"""Logistics routing: the shortest legal route for a loaded truck through a road network.

Instance: places `["W", "A", ...]`, undirected roads `{"a": "W", "b": "C", "km": 7, "limit_t": 10}` (limit_t is a
bridge or road weight limit in tonnes, null = none), the truck's weight, the depot and the destination.
Solver: close roads whose limit is below the truck's weight, then Dijkstra from the depot, narrated
node by node (pop, relax each road, improve or not). Checker (independent): the route starts and ends
right, every hop is an open road, the claimed km is the sum of the hops and equals the optimum from
Bellman-Ford over the open roads.
"""

from __future__ import annotations

import heapq
import random

from datakit.synth.procedural.common import FlawNotApplicable, Solution, as_int

NAME = "logistics"
OBJECTIVE = "distance_km"
FLAWS = ("arithmetic_slip", "missed_constraint", "wrong_final_answer", "skipped_step")
# size: number of places; tightness: share of roads with a weight limit below the truck's weight
DIFFICULTY = {"easy": {"size": 6, "tightness": 0.15}, "medium": {"size": 9, "tightness": 0.25}, "hard": {"size": 14, "tightness": 0.3}}
LIMITS = {"size": (3, 40), "tightness": (0.0, 0.6)}
TOWNS = ["Ashford", "Bexley", "Carlow", "Dunmore", "Elmstead", "Fairford", "Glenrock", "Hartley", "Ivybridge", "Jarrow",
         "Kelso", "Lydney", "Marlow", "Norton", "Oakham", "Penrith", "Quarry Bank", "Redruth", "Selby", "Thirsk",
         "Upton", "Ventnor", "Wetherby", "Yarm", "Zennor"]


def make_instance(rng: random.Random, params: dict) -> dict:
    n, closed_share = params["size"], params["tightness"]
    for _ in range(50):
        names = ["Depot"] + (rng.sample(TOWNS, n - 1) if n - 1 <= len(TOWNS) else [f"Town {i}" for i in range(1, n)])
        pts = [(rng.randint(0, 30), rng.randint(0, 30)) for _ in range(n)]
        roads = {}
        for j in range(1, n):  # random spanning tree keeps it connected
            i = rng.randrange(j)
            roads[(i, j)] = None
        for _ in range(n):  # plus shortcuts
            i, j = sorted(rng.sample(range(n), 2))
            roads[(i, j)] = None
        weight = rng.choice([8, 12, 18, 24])
        out = []
        for (i, j) in sorted(roads):
            km = max(1, round(((pts[i][0] - pts[j][0]) ** 2 + (pts[i][1] - pts[j][1]) ** 2) ** 0.5 * rng.uniform(1.0, 1.3)))
            if rng.random() < closed_share:
                limit = rng.choice([w for w in (3, 5, 7.5, 10, 16, 20) if w < weight])
            else:
                limit = rng.choice([None, None, 30, 40])
            out.append({"a": names[i], "b": names[j], "km": km, "limit_t": limit})
        dest = names[rng.randrange(1, n)]
        inst = {"places": names, "roads": out, "truck_t": weight, "start": "Depot", "goal": dest}
        if _bellman_ford(inst).get(dest) is not None and len(_open_roads(inst)) > 0:
            return inst
    raise RuntimeError("could not build a connected road network")  # pragma: no cover


def render_problem(inst: dict) -> str:
    lines = [f"A {inst['truck_t']}-tonne truck must drive from {inst['start']} to {inst['goal']}. Roads (two-way, km, weight limit):"]
    for r in inst["roads"]:
        lim = f"limit {r['limit_t']} t" if r["limit_t"] is not None else "no limit"
        lines.append(f"- {r['a']} - {r['b']}: {r['km']} km, {lim}")
    lines.append("The truck may not use a road whose weight limit is below its weight. Find the shortest legal route. "
                 'End the answer with a line PLAN: {"route": ["Depot", ...], "distance_km": N}.')
    return "\n".join(lines)


def task_title(inst: dict) -> str:
    return f"Route a {inst['truck_t']} t truck through {len(inst['places'])} places under weight limits"


def _open_roads(inst: dict, ignore_limits: bool = False) -> list[dict]:
    return [r for r in inst["roads"] if ignore_limits or r["limit_t"] is None or r["limit_t"] >= inst["truck_t"]]


def solve(inst: dict, flaw: str | None = None, rng: random.Random | None = None) -> Solution:
    steps, flaw_step = [], None
    closed = [r for r in inst["roads"] if r not in _open_roads(inst)]
    steps.append(f"The truck weighs {inst['truck_t']} t, so these roads are closed: "
                 + (", ".join(f"{r['a']} - {r['b']} ({r['limit_t']} t)" for r in closed) if closed else "none") + ".")
    roads = _open_roads(inst, ignore_limits=flaw == "missed_constraint")
    if flaw == "missed_constraint":
        if not closed:
            raise FlawNotApplicable("no closed road to use")
        steps[0] = f"The truck weighs {inst['truck_t']} t; all roads are usable."
        flaw_step = 1
    adj = {p: [] for p in inst["places"]}
    for r in roads:
        adj[r["a"]].append((r["b"], r["km"]))
        adj[r["b"]].append((r["a"], r["km"]))
    for p in adj:
        adj[p].sort()
    dist, prev = {inst["start"]: 0}, {}
    heap, done = [(0, inst["start"])], set()
    steps.append(f"Start at {inst['start']} with distance 0; every other place is unknown so far.")
    slip_pending = flaw == "arithmetic_slip"
    while heap:
        d, u = heapq.heappop(heap)
        if u in done or d != dist[u]:
            continue
        done.add(u)
        if u == inst["goal"]:
            steps.append(f"Take {u} (distance {d}): it is the destination, so its distance is final.")
            break
        notes = []
        for v, km in adj[u]:
            if v in done:
                continue
            nd = d + km
            shown = nd
            if slip_pending and (v not in dist or nd - 2 < dist[v]) and km > 2:
                shown = nd + rng.choice([-2, -1, 1])
                slip_pending = False
                flaw_step = len(steps) + 1
            if v not in dist or shown < dist[v]:
                was = f" < {dist[v]}" if v in dist else ""
                notes.append(f"{v}: {d} + {km} = {shown}{was}, update")
                dist[v], prev[v] = shown, u
                heapq.heappush(heap, (shown, v))
            else:
                notes.append(f"{v}: {d} + {km} = {shown}, not better than {dist[v]}")
        steps.append(f"Take {u} (distance {d}) and check its roads: " + ("; ".join(notes) if notes else "no new places") + ".")
    if inst["goal"] not in done:
        raise FlawNotApplicable("goal unreachable under this flaw")
    route = [inst["goal"]]
    while route[-1] != inst["start"]:
        route.append(prev[route[-1]])
    route.reverse()
    kms = [_km(roads, a, b) for a, b in zip(route, route[1:])]
    total = dist[inst["goal"]]
    if flaw == "skipped_step":
        if len(route) < 3:
            raise FlawNotApplicable("a direct route has no stop to skip")
        k = rng.randrange(1, len(route) - 1)
        route = route[:k] + route[k + 1:]
        kms = kms[: k - 1] + [kms[k - 1] + kms[k]] + kms[k + 1:]  # the distance still counts the skipped stop
        flaw_step = len(steps) + 1
    steps.append("Follow the predecessors back: " + " -> ".join(route)
                 + (f", {' + '.join(map(str, kms))} = {total} km." if len(kms) > 1 else f", {total} km."))
    steps.append("Check: every road on the route is open to the truck and no unexplored place could give a shorter route.")
    plan = {"route": route, "distance_km": total}
    return Solution(steps, plan, summary(plan), flaw_step)


def summary(plan: dict) -> str:
    return f"Drive {' -> '.join(plan['route'])}, {plan['distance_km']} km in total."


def _km(roads, a, b):
    return min(r["km"] for r in roads if {r["a"], r["b"]} == {a, b})


def _bellman_ford(inst: dict) -> dict:
    dist = {inst["start"]: 0}
    roads = _open_roads(inst)
    for _ in range(len(inst["places"])):
        changed = False
        for r in roads:
            for a, b in ((r["a"], r["b"]), (r["b"], r["a"])):
                if a in dist and (b not in dist or dist[a] + r["km"] < dist[b]):
                    dist[b], changed = dist[a] + r["km"], True
        if not changed:
            break
    return dist


def check(inst: dict, plan: dict) -> list[str]:
    """Problems with `plan` for `inst` ([] when the plan is correct). Independent of `solve`."""
    try:
        route = [str(p) for p in plan["route"]]
        claimed = as_int(plan["distance_km"], "distance_km")
    except (KeyError, TypeError, ValueError) as e:
        return [f"plan: malformed ({e})"]
    if len(route) < 2 or route[0] != inst["start"] or route[-1] != inst["goal"]:
        return [f"the route must run from {inst['start']} to {inst['goal']}"]
    errors, total = [], 0
    for a, b in zip(route, route[1:]):
        roads = [r for r in inst["roads"] if {r["a"], r["b"]} == {a, b}]
        if not roads:
            errors.append(f"no road between {a} and {b}")
            continue
        legal = [r for r in roads if r["limit_t"] is None or r["limit_t"] >= inst["truck_t"]]
        if not legal:
            errors.append(f"constraint: road {a} - {b} has a limit below the truck's {inst['truck_t']} t")
            legal = roads
        total += min(r["km"] for r in legal)
    if errors:
        return errors
    if total != claimed:
        errors.append(f"distance_km {claimed} but the route is {total} km")
    best = _bellman_ford(inst)[inst["goal"]]
    if total > best:
        errors.append(f"not shortest: {total} km but {best} km is possible")
    return errors
