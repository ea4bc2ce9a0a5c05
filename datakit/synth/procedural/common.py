"""What every procedural domain shares: the solution shape, the answer format and the generic checks.

A domain module (one per planning domain) solves an instance into a `Solution`: the numbered steps of
the real algorithm (they become `<thinking>`), a structured `plan` (the machine-checkable part of
`<answer>`) and a one-sentence summary. The answer is rendered as

    <summary sentence>
    PLAN: {"compact": "json"}

so a checker can parse the plan back with `parse_answer`. Two checks are shared by all domains:
the thinking must be numbered `Step 1:`, `Step 2:`, ... and every arithmetic claim written in it
(`6 + 4 = 10`, `14 - 5 = 9`, `max(3, 6) = 6`) must be true.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

PLAN_PREFIX = "PLAN: "


@dataclass
class Solution:
    """A solved (or deliberately flawed) instance.

    steps: the algorithm's steps in plain language, without the `Step i:` prefix.
    plan: the structured answer the checker reads.
    summary: one human sentence stating the result.
    flaw_step: 1-based step number where a flaw was introduced (None for a correct solution).
    """

    steps: list[str]
    plan: dict
    summary: str
    flaw_step: int | None = None
    notes: dict = field(default_factory=dict)

    @property
    def thinking(self) -> str:
        return render_thinking(self.steps)

    @property
    def answer(self) -> str:
        return render_answer(self.plan, self.summary)


class FlawNotApplicable(Exception):
    """This flaw cannot be made on this instance (e.g. no dependency to violate)."""


def render_thinking(steps: list[str]) -> str:
    return "\n".join(f"Step {i}: {s}" for i, s in enumerate(steps, 1))


def render_answer(plan: dict, summary: str) -> str:
    return f"{summary}\n{PLAN_PREFIX}{json.dumps(plan, separators=(',', ':'), sort_keys=True)}"


def render_record_text(problem: str, thinking: str, answer: str) -> str:
    return f"<problem>{problem}</problem><thinking>{thinking}</thinking><answer>{answer}</answer>"


def render_completion(thinking: str, answer: str) -> str:
    return f"<thinking>{thinking}</thinking><answer>{answer}</answer>"


_TAG_RE = {t: re.compile(rf"<{t}>(.*?)</{t}>", re.S) for t in ("problem", "thinking", "answer")}


def split_completion(text: str) -> tuple[str, str]:
    """(thinking, answer) from `<thinking>..</thinking><answer>..</answer>`; missing parts are ''."""
    th = _TAG_RE["thinking"].search(text)
    an = _TAG_RE["answer"].search(text)
    return (th.group(1) if th else "", an.group(1) if an else "")


def strip_problem(prompt: str) -> str:
    m = _TAG_RE["problem"].search(prompt)
    return m.group(1) if m else prompt


def parse_answer(answer: str) -> dict:
    """The structured plan in an answer; raises ValueError when there is none or it is not JSON."""
    for line in reversed(answer.strip().splitlines()):
        line = line.strip()
        if line.startswith(PLAN_PREFIX.strip()):
            plan = json.loads(line[len(PLAN_PREFIX.strip()):].strip())
            if not isinstance(plan, dict):
                raise ValueError("PLAN is not a JSON object")
            return plan
    raise ValueError("answer has no 'PLAN: {...}' line")


_STEP_RE = re.compile(r"^Step (\d+):", re.M)
# "6 + 4 = 10", "14 - 5 - 2 = 7", "3 * 4 = 12" (integers only; the lookarounds keep us off dates and ids)
_CHAIN_RE = re.compile(r"(?<![\w.(,-])(\d+(?:[ ]*[-+*][ ]*\d+)+)[ ]*=[ ]*(-?\d+)(?!\w|\.\d)")
_MINMAX_RE = re.compile(r"\b(max|min)\((-?\d+(?:,[ ]*-?\d+)*)\)[ ]*=[ ]*(-?\d+)(?!\w|\.\d)")


_TOKEN_RE = re.compile(r"\d+|[-+*]")


def _eval_int(expr: str) -> int:
    """Value of an integer expression with + - * (usual precedence); the regex above admits nothing else."""
    total, sign, term = 0, 1, None
    pending_mul = False
    for tok in _TOKEN_RE.findall(expr):
        if tok == "*":
            pending_mul = True
        elif tok in "+-":
            total += sign * term
            sign, term = (1 if tok == "+" else -1), None
        else:
            term = term * int(tok) if pending_mul else int(tok)
            pending_mul = False
    return total + sign * term


def arithmetic_errors(text: str) -> list[str]:
    """Every written arithmetic claim in `text` that is false, as readable messages."""
    errors = []
    for m in _CHAIN_RE.finditer(text):
        expr, claimed = m.group(1), int(m.group(2))
        value = _eval_int(expr)
        if value != claimed:
            errors.append(f"arithmetic: '{m.group(0)}' (it is {value})")
    for m in _MINMAX_RE.finditer(text):
        nums = [int(x) for x in m.group(2).split(",")]
        value = max(nums) if m.group(1) == "max" else min(nums)
        if value != int(m.group(3)):
            errors.append(f"arithmetic: '{m.group(0)}' (it is {value})")
    return errors


def thinking_errors(thinking: str) -> list[str]:
    """Shape and arithmetic problems of a thinking trace."""
    numbers = [int(n) for n in _STEP_RE.findall(thinking)]
    if not numbers:
        return ["thinking: no numbered steps ('Step 1: ...')"]
    errors = []
    if numbers != list(range(1, len(numbers) + 1)):
        errors.append(f"thinking: steps are numbered {numbers[:8]}..., not 1, 2, 3, ...")
    return errors + arithmetic_errors(thinking)


def as_int(value, name: str) -> int:
    """An integer from a plan field, or ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} is not an integer: {value!r}")
    return value
