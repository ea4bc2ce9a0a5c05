"""Contract 3: the SFT, DPO and planning records (JSONL, one record per line), typed.

    SFT       {"prompt", "completion", "meta"}: the loss applies to completion tokens only
    DPO       {"prompt", "chosen", "rejected", "meta": {"flaw", ...}}: a chosen and a rejected completion
    planning  {"domain", "task", "problem", "thinking", "answer", "meta": {"provider", "model", "cost_usd",
               "verified", ...}}, rendered `<problem>..</problem><thinking>..</thinking><answer>..</answer>`

Every record may carry an `id` (writers resume by it). Fields are checked (non-empty text; a DPO pair's
two completions differ); `meta` is free-form provenance. `datakit synth` writes these records;
`format = "sft"` / `"dpo"` / `"planning"` sources of a mixture read them.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from datakit.strict import Strict


def _text(v: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("must be non-empty text")
    return v


class _Record(Strict):
    id: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class SftRecord(_Record):
    prompt: str
    completion: str

    _nonempty = field_validator("prompt", "completion")(lambda cls, v: _text(v))


class DpoRecord(_Record):
    prompt: str
    chosen: str
    rejected: str

    _nonempty = field_validator("prompt", "chosen", "rejected")(lambda cls, v: _text(v))

    @model_validator(mode="after")
    def _differ(self) -> "DpoRecord":
        if " ".join(self.chosen.split()) == " ".join(self.rejected.split()):
            raise ValueError("chosen and rejected are the same text")
        return self


class PlanningRecord(_Record):
    domain: str
    task: str | None = None
    problem: str
    thinking: str
    answer: str

    _nonempty = field_validator("domain", "problem", "thinking", "answer")(lambda cls, v: _text(v))

    def render(self) -> str:
        """The training text: `<problem>..</problem><thinking>..</thinking><answer>..</answer>`."""
        return f"<problem>{self.problem}</problem><thinking>{self.thinking}</thinking><answer>{self.answer}</answer>"


RECORDS: dict[str, type[_Record]] = {"sft": SftRecord, "dpo": DpoRecord, "planning": PlanningRecord}
PLANNING_TAGS = ("<problem>", "</problem>", "<thinking>", "</thinking>", "<answer>", "</answer>")


def parse_record(kind: str, record: dict) -> _Record:
    """Validate one record of `kind` ("sft" | "dpo" | "planning"); pydantic's ValidationError says what is wrong."""
    return RECORDS[kind].model_validate(record)
