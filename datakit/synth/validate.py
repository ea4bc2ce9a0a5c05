"""Is a model's answer a usable planning example? Exactly one non-empty <problem>, <thinking>, <answer>;
not truncated; numbered steps in the thinking. Each rejection has a short reason that is counted."""

from __future__ import annotations

import re

TAGS = ("problem", "thinking", "answer")
_STEP = re.compile(r"^\s*(?:step\s*)?(\d+)[.):]\s+\S", re.IGNORECASE | re.MULTILINE)


class Rejected(Exception):
    """The output is not a valid example; `reason` is what the rejects file and status count."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def parse_planning_output(text: str, finish_reason: str | None, min_steps: int = 3) -> dict[str, str]:
    """{"problem", "thinking", "answer"} from the answer text, or Rejected(reason)."""
    if finish_reason == "length":
        raise Rejected("truncated")
    if finish_reason == "content_filter":
        raise Rejected("content_filter")
    fields = {}
    for tag in TAGS:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.DOTALL)
        if not found:
            raise Rejected(f"missing_{tag}")
        if len(found) > 1:
            raise Rejected(f"repeated_{tag}")
        value = found[0].strip()
        if not value:
            raise Rejected(f"empty_{tag}")
        fields[tag] = value
    if len(_STEP.findall(fields["thinking"])) < min_steps:
        raise Rejected("no_numbered_steps")
    return fields


def render(record: dict) -> str:
    """A planning record as training text (Contract 3)."""
    return f"<problem>{record['problem']}</problem><thinking>{record['thinking']}</thinking><answer>{record['answer']}</answer>"
