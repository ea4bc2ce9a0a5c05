"""Each domain checker on hand-written correct and incorrect plans (a checker that accepts everything fails here)."""

from __future__ import annotations

import pytest

from datakit.synth.procedural import (
    check_completion,
    logistics,
    multi_agent,
    research_planning,
    resource_allocation,
    software_architecture,
)
from datakit.synth.procedural.common import arithmetic_errors, parse_answer, render_answer, thinking_errors

# --- software_architecture: T1 -> {T2, T3} -> T4 ------------------------------------------------------------
SCHED = {"unit": "days", "tasks": [
    {"id": "T1", "name": "design", "duration": 3, "after": []},
    {"id": "T2", "name": "api", "duration": 2, "after": ["T1"]},
    {"id": "T3", "name": "db", "duration": 4, "after": ["T1"]},
    {"id": "T4", "name": "release", "duration": 1, "after": ["T2", "T3"]},
]}
SCHED_OK = {"start": {"T1": 0, "T2": 3, "T3": 3, "T4": 7}, "makespan": 8, "critical_path": ["T1", "T3", "T4"]}


def test_scheduling_checker_accepts_the_hand_solved_plan():
    assert software_architecture.check(SCHED, SCHED_OK) == []


@pytest.mark.parametrize("change, expect", [
    ({"start": {"T1": 0, "T2": 3, "T3": 3, "T4": 5}}, "dependency"),          # T4 before T3 finishes
    ({"start": {"T1": 0, "T2": 4, "T3": 3, "T4": 7}}, "could start"),         # not the earliest start
    ({"makespan": 7}, "makespan"),                                              # wrong final answer
    ({"critical_path": ["T1", "T2", "T4"]}, "gap-free"),                       # T2 -> T4 has slack
    ({"start": {"T1": 0, "T2": 3, "T4": 7}}, "missing"),                       # skipped task
    ({"start": "soon"}, "malformed"),
])
def test_scheduling_checker_rejects_hand_made_mistakes(change, expect):
    errors = software_architecture.check(SCHED, {**SCHED_OK, **change})
    assert errors and any(expect in e for e in errors), errors


# --- resource_allocation: {P1, P3} is the unique optimum --------------------------------------------------
ALLOC = {"capacity": {"engineers": 6, "budget_k": 4}, "projects": [
    {"id": "P1", "name": "a", "engineers": 2, "budget_k": 1, "value": 5},
    {"id": "P2", "name": "b", "engineers": 3, "budget_k": 2, "value": 6},
    {"id": "P3", "name": "c", "engineers": 4, "budget_k": 3, "value": 9},
]}


def test_allocation_checker_accepts_the_optimum():
    assert resource_allocation.check(ALLOC, {"selected": ["P1", "P3"], "engineers": 6, "budget_k": 4, "value": 14}) == []
    assert resource_allocation.best_value(ALLOC) == 14


@pytest.mark.parametrize("plan, expect", [
    ({"selected": ["P1", "P2"], "engineers": 5, "budget_k": 3, "value": 11}, "not optimal"),
    ({"selected": ["P1", "P2", "P3"], "engineers": 9, "budget_k": 6, "value": 20}, "over-allocated"),
    ({"selected": ["P1", "P3"], "engineers": 6, "budget_k": 4, "value": 15}, "claims 15"),
    ({"selected": ["P1", "P9"], "engineers": 6, "budget_k": 4, "value": 14}, "unknown"),
])
def test_allocation_checker_rejects_hand_made_mistakes(plan, expect):
    errors = resource_allocation.check(ALLOC, plan)
    assert errors and any(expect in e for e in errors), errors


# --- logistics: the short way via A crosses a 5 t bridge; a 10 t truck must go via B ----------------------
ROADS = {"places": ["Depot", "A", "B", "Goal"], "truck_t": 10, "start": "Depot", "goal": "Goal", "roads": [
    {"a": "Depot", "b": "A", "km": 2, "limit_t": None},
    {"a": "A", "b": "Goal", "km": 2, "limit_t": 5},
    {"a": "Depot", "b": "B", "km": 3, "limit_t": None},
    {"a": "B", "b": "Goal", "km": 4, "limit_t": 30},
    {"a": "A", "b": "B", "km": 1, "limit_t": None},
]}


def test_logistics_checker_accepts_the_shortest_legal_route():
    assert logistics.check(ROADS, {"route": ["Depot", "A", "B", "Goal"], "distance_km": 7}) == []
    assert logistics.check(ROADS, {"route": ["Depot", "B", "Goal"], "distance_km": 7}) == []


@pytest.mark.parametrize("plan, expect", [
    ({"route": ["Depot", "A", "Goal"], "distance_km": 4}, "limit"),            # missed weight limit
    ({"route": ["Depot", "Goal"], "distance_km": 4}, "no road"),               # skipped stop / invented road
    ({"route": ["Depot", "B", "Goal"], "distance_km": 6}, "distance_km 6"),    # arithmetic
    ({"route": ["Depot", "B", "A", "B", "Goal"], "distance_km": 9}, "not shortest"),
    ({"route": ["A", "B", "Goal"], "distance_km": 5}, "must run from"),
])
def test_logistics_checker_rejects_hand_made_mistakes(plan, expect):
    errors = logistics.check(ROADS, plan)
    assert errors and any(expect in e for e in errors), errors


# --- multi_agent: two robots swap ends of the top row; R2 detours through row 1 ----------------------------
GRID = {"grid": ["...", "...", ".#."], "robots": [
    {"id": "R1", "start": [0, 0], "goal": [0, 2]},
    {"id": "R2", "start": [0, 2], "goal": [0, 0]},
]}
MAPF_OK = {"paths": {"R1": [[0, 0], [0, 1], [0, 2]], "R2": [[0, 2], [1, 2], [1, 1], [1, 0], [0, 0]]},
           "makespan": 4, "sum_of_costs": 6}


def test_multi_agent_checker_accepts_a_conflict_free_plan():
    assert multi_agent.check(GRID, MAPF_OK) == []


@pytest.mark.parametrize("paths, claims, expect", [
    ({"R2": [[0, 2], [0, 1], [0, 0]]}, {"makespan": 2, "sum_of_costs": 4}, "both in"),      # vertex conflict
    ({"R2": [[0, 2], [1, 2], [1, 0], [0, 0]]}, {"makespan": 3, "sum_of_costs": 5}, "jumps"),  # skipped move
    ({"R2": [[0, 2], [1, 2], [2, 2], [2, 1], [2, 0], [1, 0], [0, 0]]}, {"makespan": 6, "sum_of_costs": 8}, "blocked"),
    ({}, {"sum_of_costs": 7}, "sum_of_costs 7"),
    ({"R1": [[0, 0], [0, 1]]}, {}, "must go from"),
])
def test_multi_agent_checker_rejects_hand_made_mistakes(paths, claims, expect):
    plan = {**MAPF_OK, **claims, "paths": {**MAPF_OK["paths"], **paths}}
    errors = multi_agent.check(GRID, plan)
    assert errors and any(expect in e for e in errors), errors


def test_multi_agent_checker_sees_a_swap():
    inst = {"grid": ["..."], "robots": [{"id": "R1", "start": [0, 0], "goal": [0, 1]},
                                        {"id": "R2", "start": [0, 1], "goal": [0, 0]}]}
    errors = multi_agent.check(inst, {"paths": {"R1": [[0, 0], [0, 1]], "R2": [[0, 1], [0, 0]]}, "makespan": 1, "sum_of_costs": 2})
    assert any("swap" in e for e in errors), errors


# --- research_planning: R1 -> R2 (high risk, due 6); R3 due 10 -------------------------------------------
RESEARCH = {"unit": "weeks", "contingency": {"low": 0, "medium": 1, "high": 2}, "tasks": [
    {"id": "R1", "name": "review", "weeks": 2, "risk": "low", "after": [], "deadline": None},
    {"id": "R2", "name": "pilot", "weeks": 1, "risk": "high", "after": ["R1"], "deadline": 6},
    {"id": "R3", "name": "survey", "weeks": 3, "risk": "medium", "after": [], "deadline": 10},
]}
RESEARCH_OK = {"order": ["R1", "R2", "R3"], "start": {"R1": 0, "R2": 2, "R3": 5}, "finish": {"R1": 2, "R2": 5, "R3": 9}, "end_week": 9}


def test_research_checker_accepts_a_timeline_meeting_every_deadline():
    assert research_planning.check(RESEARCH, RESEARCH_OK) == []


@pytest.mark.parametrize("plan, expect", [
    ({"order": ["R3", "R1", "R2"], "start": {"R3": 0, "R1": 4, "R2": 6}, "finish": {"R3": 4, "R1": 6, "R2": 9}, "end_week": 9}, "deadline"),
    ({"order": ["R2", "R1", "R3"], "start": {"R2": 0, "R1": 3, "R3": 5}, "finish": {"R2": 3, "R1": 5, "R3": 9}, "end_week": 9}, "dependency"),
    ({"order": ["R1", "R2", "R3"], "start": {"R1": 0, "R2": 2, "R3": 4}, "finish": {"R1": 2, "R2": 5, "R3": 8}, "end_week": 8}, "over-allocated"),
    ({"order": ["R1", "R2", "R3"], "start": {"R1": 0, "R2": 2, "R3": 3}, "finish": {"R1": 2, "R2": 3, "R3": 7}, "end_week": 7}, "contingency"),
    ({**RESEARCH_OK, "end_week": 8}, "end_week 8"),
    ({"order": ["R1", "R3"], "start": {"R1": 0, "R3": 2}, "finish": {"R1": 2, "R3": 6}, "end_week": 6}, "exactly once"),
])
def test_research_checker_rejects_hand_made_mistakes(plan, expect):
    errors = research_planning.check(RESEARCH, plan)
    assert errors and any(expect in e for e in errors), errors


# --- shared checks on the trace and the answer line ----------------------------------------------------------
def test_arithmetic_claims_are_checked():
    assert arithmetic_errors("finish = 6 + 4 = 10. max(3, 6) = 6; 14 - 5 = 9; 2 * 3 = 6") == []
    assert arithmetic_errors("finish = 6 + 4 = 11.")
    assert arithmetic_errors("makespan = max(3, 6) = 5 days")
    assert arithmetic_errors("12 - 5 - 2 = 4")
    assert arithmetic_errors("day 2026-11-30 and cell [1,2]") == []


def test_thinking_needs_consecutive_numbered_steps():
    assert thinking_errors("Step 1: a\nStep 2: b") == []
    assert thinking_errors("no steps here")
    assert thinking_errors("Step 1: a\nStep 3: b")


def test_check_completion_combines_trace_and_plan():
    answer = render_answer(SCHED_OK, "The project takes 8 days.")
    assert parse_answer(answer) == SCHED_OK
    good = "Step 1: T4 starts at max(5, 7) = 7; finish = 7 + 1 = 8."
    assert check_completion("software_architecture", SCHED, good, answer) == []
    assert check_completion("software_architecture", SCHED, "Step 1: 7 + 1 = 9.", answer)  # right plan, false trace
    assert check_completion("software_architecture", SCHED, good, "The project takes 8 days.")  # no PLAN line
    assert check_completion("software_architecture", SCHED, good, "PLAN: {not json")
