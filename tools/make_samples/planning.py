"""Planning records (Contract 3): shortest routes (Dijkstra) and task orderings, answers computed.
"""

from __future__ import annotations

import heapq
import random
from pathlib import Path

from tools.make_samples.common import rng_for, write_jsonl, write_readme


DIRS = ["datakit__planning"]


CITIES = ["Avon", "Brook", "Cedar", "Dover", "Elm", "Fairview", "Glen", "Harbor"]
TASKS = ["buy materials", "draw plans", "get permit", "pour foundation", "build walls", "install roof", "paint", "inspect"]


def _plan_route(rng: random.Random) -> tuple[str, str, str, str, str]:
    nodes = rng.sample(CITIES, 5)
    edges = {}
    for i in range(len(nodes)):
        for j in range(i + 1, len(nodes)):
            if rng.random() < 0.6 or j == i + 1:
                edges[(nodes[i], nodes[j])] = rng.randint(2, 20)
    adj: dict[str, list[tuple[str, int]]] = {v: [] for v in nodes}
    for (u, v), w in edges.items():
        adj[u].append((v, w))
        adj[v].append((u, w))
    src, dst = nodes[0], nodes[-1]
    dist, prev, heap = {src: 0}, {}, [(0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist.get(u, 1e9):
            continue
        for v, w in sorted(adj[u]):
            if d + w < dist.get(v, 1e9):
                dist[v], prev[v] = d + w, u
                heapq.heappush(heap, (d + w, v))
    path = [dst]
    while path[-1] != src:
        path.append(prev[path[-1]])
    path.reverse()
    roads = "; ".join(f"{u}-{v}: {w} km" for (u, v), w in sorted(edges.items()))
    problem = f"Roads (two-way) with lengths: {roads}. Find the shortest route from {src} to {dst}."
    thinking = (
        f"Run Dijkstra from {src}. Final distances: "
        + ", ".join(f"{v}={dist[v]}" for v in sorted(dist))
        + f". Follow predecessors back from {dst}: {' <- '.join(reversed(path))}."
    )
    answer = f"{' -> '.join(path)} ({dist[dst]} km)"
    return "routing", "shortest_route", problem, thinking, answer


def _plan_order(rng: random.Random) -> tuple[str, str, str, str, str]:
    k = rng.randint(4, 6)
    tasks = TASKS[:k]
    deps = {t: sorted(rng.sample(tasks[:i], min(i, rng.randint(0, 2)))) for i, t in enumerate(tasks)}
    order, done = [], set()
    while len(order) < k:
        ready = sorted(t for t in tasks if t not in done and all(d in done for d in deps[t]))
        order.append(ready[0])
        done.add(ready[0])
    rules = "; ".join(f"'{t}' needs {', '.join(repr(d) for d in deps[t])}" for t in tasks if deps[t]) or "no dependencies"
    shuffled = tasks[:]
    rng.shuffle(shuffled)
    problem = f"Order these tasks so every task comes after the tasks it needs: {', '.join(shuffled)}. Rules: {rules}. When several tasks are ready, take them alphabetically."
    thinking = "Repeatedly pick the alphabetically first task whose prerequisites are done: " + "; ".join(f"step {i + 1}: {t}" for i, t in enumerate(order)) + "."
    return "project", "task_ordering", problem, thinking, ", ".join(order)


def make_planning(n: int) -> list[dict]:
    rng = rng_for("planning")
    rows = []
    for i in range(n):
        domain, task, problem, thinking, answer = _plan_route(rng) if i % 2 == 0 else _plan_order(rng)
        rows.append(
            {
                "domain": domain,
                "task": task,
                "problem": problem,
                "thinking": thinking,
                "answer": answer,
                "meta": {"provider": "datakit-sample", "model": "template", "cost_usd": 0.0, "verified": True, "sample_index": i},
            }
        )
    return rows


def write(out: Path) -> dict[str, int]:
    plan = make_planning(40)
    write_jsonl(plan, out / "datakit__planning" / "default" / "train-00000.jsonl")
    write_readme(out / "datakit__planning", "Planning records, Contract 3 (sample)", [
        "JSONL records {domain, task, problem, thinking, answer, meta}. Shortest routes (Dijkstra) and task",
        "orderings (topological sort) generated from templates; answers computed and verified by construction.",
    ])
    return {"planning": len(plan)}
