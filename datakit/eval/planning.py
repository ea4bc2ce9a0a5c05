"""Verified planning accuracy: held-out procedural problems, answered by a model, checked by the domains'
own checkers (datakit.synth.procedural). No other toolkit has this number.

Held-out split. Eval problems are built with seeds from `EVAL_SEED` up, a range that `datakit synth
planning` refuses for training data (`RESERVED_SEED_FLOOR`), and `prove_disjoint` checks every eval
instance (canonical JSON, sha256) and problem text against the training records it is given: the eval
result records how many were checked and that none matched.

Scoring one completion (`score`): it must hold `<answer>..</answer>` with a `PLAN: {json}` line
(else a format error); the domain's checker then says whether the plan is valid (feasible and
consistent with the instance) and, where the solver knows the optimum, optimal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from datakit.errors import UserError
from datakit.eval.stats import wilson
from datakit.synth.procedural.generate import RESERVED_SEED_FLOOR  # seeds >= this are eval-only: training generation refuses them

EVAL_SEED = RESERVED_SEED_FLOOR
DIFFICULTIES = ("easy", "medium", "hard")
# Checker messages that mean "feasible but not the optimum", per domain whose checker knows the optimum;
# multi_agent and research_planning check feasibility only (their solvers do not prove optimality).
OPTIMALITY_ERRORS = {
    "resource_allocation": ("not optimal:",),
    "logistics": ("not shortest:",),
    "software_architecture": ("is not the shortest possible", "but could start day"),
}


@dataclass
class Problem:
    id: str
    domain: str
    difficulty: str
    prompt: str  # `<problem>..</problem>`, as the SFT data renders it
    instance: dict
    reference: str  # the solver's completion (checked), for tests and the report's examples


def instance_key(domain: str, instance: dict) -> str:
    return hashlib.sha256(json.dumps([domain, instance], sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def heldout_problems(per_cell: int = 4, difficulties=DIFFICULTIES, domains: list[str] | None = None, seed: int = EVAL_SEED) -> list[Problem]:
    """`per_cell` problems per domain and difficulty, from the eval-only seed range."""
    from datakit.synth.procedural import make_record
    from datakit.synth.procedural.common import render_completion
    from datakit.synth.procedural.generate import resolve_domains

    if seed < RESERVED_SEED_FLOOR:
        raise UserError(f"eval seed {seed} is in the training range", field="seed", fix=f"use a seed >= {RESERVED_SEED_FLOOR} (2**62)")
    out = []
    for domain in resolve_domains(domains):
        for diff in difficulties:
            for i in range(per_cell):
                rec = make_record(domain, i, seed=seed, difficulty=diff)
                out.append(Problem(rec["id"], domain, rec["meta"]["difficulty"], f"<problem>{rec['problem']}</problem>",
                                   rec["meta"]["instance"], render_completion(rec["thinking"], rec["answer"])))
    return out


def training_records(folders: list[str | Path]) -> list[dict]:
    """Planning records (Contract 3) under the given folders (`records/*.jsonl` or `*.jsonl`)."""
    recs = []
    for folder in folders:
        folder = Path(folder)
        files = sorted(folder.glob("records/*.jsonl")) + sorted(folder.glob("*.jsonl")) if folder.is_dir() else [folder]
        for path in files:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        recs.append(json.loads(line))
                    except ValueError:
                        continue
    return recs


def prove_disjoint(problems: list[Problem], records: list[dict]) -> dict:
    """Check no eval problem is a training record (same instance or same problem text); raises if one is."""
    keys, texts = set(), set()
    for r in records:
        inst = (r.get("meta") or {}).get("instance")
        if inst is not None and r.get("domain"):
            keys.add(instance_key(r["domain"], inst))
        if r.get("problem"):
            texts.add(r["problem"].strip())
        if r.get("prompt"):
            texts.add(str(r["prompt"]).removeprefix("<problem>").removesuffix("</problem>").strip())
    overlap = [p.id for p in problems if instance_key(p.domain, p.instance) in keys
               or p.prompt.removeprefix("<problem>").removesuffix("</problem>").strip() in texts]
    if overlap:
        raise UserError(f"{len(overlap)} eval problems are also training records (first: {overlap[0]})", field="planning",
                        fix="regenerate the training records with a seed below 2**62 (eval seeds are reserved)")
    return {"seed_floor": RESERVED_SEED_FLOOR, "training_records_checked": len(records), "overlap": 0}


@dataclass
class Score:
    format_ok: bool
    valid: bool
    optimal: bool | None  # None where the domain's checker does not know the optimum
    errors: list[str] = field(default_factory=list)


def score(domain: str, instance: dict, completion: str) -> Score:
    """Check one completion (`<thinking>..</thinking><answer>..</answer>`) against its instance."""
    from datakit.synth.procedural import DOMAINS
    from datakit.synth.procedural.common import parse_answer

    opt_known = domain in OPTIMALITY_ERRORS
    start, end = completion.find("<answer>"), completion.find("</answer>")
    if start < 0 or end < start:
        return Score(False, False, False if opt_known else None, ["format: no <answer>..</answer>"])
    try:
        plan = parse_answer(completion[start + len("<answer>"):end])
    except ValueError as e:
        return Score(False, False, False if opt_known else None, [f"format: {e}"])
    try:
        errors = DOMAINS[domain].check(instance, plan)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        errors = [f"plan does not fit the instance ({type(e).__name__}: {e})"]
    markers = OPTIMALITY_ERRORS.get(domain, ())
    infeasible = [e for e in errors if not any(m in e for m in markers)]
    return Score(True, not infeasible, (not errors) if opt_known else None, errors)


def _rates(scores: list[Score]) -> dict:
    n = len(scores)
    out = {"n": n}
    for key, hits, total in (("format_error", sum(not s.format_ok for s in scores), n), ("valid", sum(s.valid for s in scores), n),
                             ("optimal", sum(bool(s.optimal) for s in scores if s.optimal is not None),
                              sum(s.optimal is not None for s in scores))):
        out[key] = {"k": hits, "n": total, "rate": hits / total if total else None, "ci95": list(wilson(hits, total)) if total else None}
    return out


def evaluate(problems: list[Problem], generate: Callable[[list[str], int], list[list[str]]], samples: int = 1) -> dict:
    """Greedy accuracy (first completion) and pass@k over `samples` sampled completions per problem.

    generate(prompts, n): n completions per prompt (n = 1 greedy; n > 1 sampled) -> list of lists.
    Returns per domain x difficulty and overall: valid / optimal / format-error rates with Wilson 95% CIs.
    """
    greedy = [c[0] for c in generate([p.prompt for p in problems], 1)]
    sampled = generate([p.prompt for p in problems], samples) if samples > 1 else None
    g_scores = [score(p.domain, p.instance, c) for p, c in zip(problems, greedy)]
    cells: dict[str, list[int]] = {}
    for i, p in enumerate(problems):
        cells.setdefault(f"{p.domain}/{p.difficulty}", []).append(i)
    result = {"n_problems": len(problems), "greedy": {"all": _rates(g_scores)}, "examples": []}
    for key, idx in sorted(cells.items()):
        result["greedy"][key] = _rates([g_scores[i] for i in idx])
    if sampled is not None:
        anyvalid = [any(score(p.domain, p.instance, c).valid for c in cs) for p, cs in zip(problems, sampled)]
        k = sum(anyvalid)
        result["pass_at_k"] = {"k": samples, "all": {"n": len(problems), "hits": k, "rate": k / len(problems) if problems else None,
                                                     "ci95": list(wilson(k, len(problems)))}}
        for key, idx in sorted(cells.items()):
            h = sum(anyvalid[i] for i in idx)
            result["pass_at_k"][key] = {"n": len(idx), "hits": h, "rate": h / len(idx), "ci95": list(wilson(h, len(idx)))}
    for p, c, s in list(zip(problems, greedy, g_scores))[:3]:
        result["examples"].append({"id": p.id, "completion": c[:400], "errors": s.errors[:3]})
    return result
