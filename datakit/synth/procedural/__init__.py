"""Procedural planning problems whose answers are checked by code (`--provider procedural`).

One module per plan domain, each with `make_instance` (generator), `solve` (the real algorithm, narrated
step by step; with `flaw=` it makes one typed mistake for DPO), and `check` (an independent checker):

    software_architecture  task scheduling with dependencies: earliest starts, makespan, critical path
    resource_allocation    projects under engineer and budget limits: exact optimum
    logistics              shortest legal truck route under weight limits: Dijkstra, verified by Bellman-Ford
    multi_agent            conflict-free robot paths on a grid, verified step by step
    research_planning      one-team timelines with prerequisites, risk contingency and deadlines

`generate(out_dir, count, seed)` writes Contract 3 planning records to `<out>/records/<run_id>.jsonl`.
"""

from __future__ import annotations

from datakit.synth.procedural import (
    logistics,
    multi_agent,
    research_planning,
    resource_allocation,
    software_architecture,
)
from datakit.synth.procedural.generate import generate, make_record, parse_difficulty
from datakit.synth.procedural.records import check_completion, check_planning_record

DOMAINS = {
    m.NAME: m for m in (software_architecture, resource_allocation, logistics, multi_agent, research_planning)
}

__all__ = ["DOMAINS", "generate", "make_record", "parse_difficulty", "check_completion", "check_planning_record"]
