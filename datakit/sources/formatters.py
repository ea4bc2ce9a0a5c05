"""Formatters: render one raw upstream record to training text.

A record is a plain dict with the upstream columns (nested structs as dicts, JSON-string columns such as
finemath's `metadata` or apps' `solutions` still strings). Each formatter is a pure function plus the
top-level columns it needs, so a source can be checked against its files before any processing:

    fmt = get_formatter("gsm8k", file="mixtures/midtrain.toml", source="gsm8k")
    check_columns(fmt, {"question", "answer"}, file=..., source="gsm8k")
    text = fmt.render({"question": "...", "answer": "... #### 72"})

Names: text, fineweb-edu, cosmopedia, finemath, gsm8k, apps, arc, orca-math, code, planning, boolq,
math-dataset, chat, hellaswag; and sft, dpo (Contract 3 examples).

One registry for every format a spec may name. A formatter declares the layout its source takes in the
built mixture (Contract 2, `layout` in the manifest): `docs` for plain documents; `sft` and `dpo_pairs` for
examples, whose prompt and completion are tokenized apart (datakit.mix.examples) and whose rendered text
(prompt + completion, or prompt + chosen) is what curation sees. `Formatter.examples` (and
`is_example_format` by name) is the one test of "is this an example format"; the layouts themselves are
datakit.contract.layouts.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from datakit.contract.layouts import PAIR_LAYOUT, Layout, is_example_layout
from datakit.errors import UserError

_MISSING = object()


class EmptyTextError(UserError):
    """A record rendered to empty text (e.g. an empty `text` column). A UserError, so callers that count and
    skip such records can catch this subclass alone."""


@dataclass(frozen=True)
class Formatter:
    """A named rendering of one upstream record to training text.

    name: what a spec's `format = "..."` says.
    required_columns: top-level columns the record must have (checked against the files before a build).
    fix_hint: what to tell a user whose files lack those columns.
    layout: how the source's documents lie in the built mixture: docs, sft or dpo_pairs.
    """

    name: str
    required_columns: frozenset[str]
    _render: Callable[[Mapping[str, Any]], str]
    description: str = ""
    fix_hint: str = ""
    layout: Layout = "docs"

    @property
    def examples(self) -> bool:
        """SFT/DPO examples (prompt and completion, loss on the completion), not plain documents."""
        return is_example_layout(self.layout)

    def render(self, record: Mapping[str, Any], *, file: str | None = None, source: str | None = None) -> str:
        """Training text for one record; UserError naming the column when one is missing, or the text is empty."""
        missing = [c for c in sorted(self.required_columns) if c not in record]
        if missing:
            raise UserError(
                f"record has no column {missing[0]!r} needed by formatter {self.name!r} (record columns: {_cols(record)})",
                file=file, field=_field(source, "format"), fix=self.fix_hint or _default_fix(self),
            )
        text = self._render(record)
        if not text or not text.strip():
            raise EmptyTextError(
                f"formatter {self.name!r} rendered an empty text (columns {sorted(self.required_columns)} are empty)",
                file=file, field=_field(source, "format"),
                fix="filter such rows out (e.g. a min-length filter) or pick the formatter for this dataset",
            )
        return text


def _field(source: str | None, leaf: str) -> str:
    return f"source.{source}.{leaf}" if source else leaf


def _cols(record: Mapping[str, Any]) -> str:
    return ", ".join(sorted(str(k) for k in record if not str(k).startswith("_"))) or "none"


def _default_fix(fmt: Formatter) -> str:
    return f"pick the formatter that matches this dataset (known: {', '.join(FORMATTERS)}) or use files with column(s) {', '.join(sorted(fmt.required_columns))}"


def _s(value: Any) -> str:
    """A column value as stripped text; None -> ''."""
    return "" if value is None else str(value).strip()


# ----------------------------------------------------------------------------------------------------
# json_column: dotted paths through nested structs and JSON-string columns
# ----------------------------------------------------------------------------------------------------


def json_column(record: Mapping[str, Any], dotted_path: str, default: Any = _MISSING) -> Any:
    """The value at `dotted_path` in a record, looking through nested structs AND JSON-string columns.

    `metadata.score` works both for fineweb-edu-dedup (metadata is a struct, i.e. a dict) and for finemath
    (metadata is a JSON string, parsed on the way). Rules, applied at each step of the path:
    - a key that exists as written wins, so a column literally named "a.b" is found before a nested a -> b;
    - a string that holds a JSON object or array is parsed before descending into it;
    - a list is indexed by an integer step (`choices.label.0`).
    Returns `default` when the path does not exist (or a step is not a container); without a default,
    raises KeyError naming the path and the step that failed. Filter expressions (datakit.curate) reuse this.
    """
    if dotted_path in record:
        return record[dotted_path]
    current: Any = record
    parts = dotted_path.split(".")
    i = 0
    while i < len(parts):
        if isinstance(current, str):
            current = _parse_json(current)
        if isinstance(current, Mapping):
            # longest key first, so nested keys that themselves contain dots are found
            for j in range(len(parts), i, -1):
                key = ".".join(parts[i:j])
                if key in current:
                    current, i = current[key], j
                    break
            else:
                return _missing(dotted_path, parts[i], default)
        elif isinstance(current, (list, tuple)) and re.fullmatch(r"-?\d+", parts[i]):
            idx = int(parts[i])
            if not -len(current) <= idx < len(current):
                return _missing(dotted_path, parts[i], default)
            current, i = current[idx], i + 1
        else:
            return _missing(dotted_path, parts[i], default)
    return current


def _parse_json(value: str) -> Any:
    stripped = value.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _missing(path: str, step: str, default: Any) -> Any:
    if default is not _MISSING:
        return default
    raise KeyError(f"{path!r}: no {step!r} at this point of the record")


# ----------------------------------------------------------------------------------------------------
# The formatters
# ----------------------------------------------------------------------------------------------------


def _text(r: Mapping[str, Any]) -> str:
    return _s(r["text"])


_CALC = re.compile(r"<<[^<>]*>>")


def split_gsm8k_answer(answer: str) -> tuple[str, str | None]:
    """(reasoning without <<calc>> annotations, final answer or None) of a gsm8k `answer` ending in `#### N`."""
    reasoning, sep, final = _s(answer).rpartition("####")
    if not sep:
        return _CALC.sub("", _s(answer)).strip(), None
    return _CALC.sub("", reasoning).strip(), final.strip().replace(",", "") or None


def _gsm8k(r: Mapping[str, Any]) -> str:
    question, (reasoning, final) = _s(r["question"]), split_gsm8k_answer(_s(r["answer"]))
    if not question:
        return ""
    parts = [f"Question: {question}", f"Answer: {reasoning}" if reasoning else "Answer:"]
    if final is not None:
        parts.append(f"Final answer: {final}")
    return "\n\n".join(parts)


def _orca(r: Mapping[str, Any]) -> str:
    question, answer = _s(r["question"]), _s(r["answer"])
    if not question:
        return ""
    return f"Question: {question}\n\nAnswer: {answer}"


def first_apps_solution(solutions: Any) -> str | None:
    """The first non-empty program of an apps `solutions` value: a JSON list string, "" or None (no solution)."""
    if solutions is None:
        return None
    if isinstance(solutions, str):
        if not solutions.strip():
            return None
        try:
            solutions = json.loads(solutions)
        except json.JSONDecodeError:
            return None  # malformed upstream value: render the problem alone
    if isinstance(solutions, str):
        return solutions.strip() or None
    if isinstance(solutions, (list, tuple)):
        for s in solutions:
            if isinstance(s, str) and s.strip():
                return s.rstrip()
    return None


def _apps(r: Mapping[str, Any]) -> str:
    question = _s(r["question"])
    if not question:
        return ""
    parts = [f"Problem:\n{question}"]
    starter = (r.get("starter_code") or "").rstrip()
    if starter.strip():
        parts.append(f"Starter code:\n```python\n{starter}\n```")
    solution = first_apps_solution(r.get("solutions"))
    if solution:
        parts.append(f"Solution:\n```python\n{solution}\n```")
    return "\n\n".join(parts)


def _arc(r: Mapping[str, Any]) -> str:
    question = _s(r["question"])
    choices = r["choices"]
    if isinstance(choices, str):
        choices = _parse_json(choices)
    texts = list((choices or {}).get("text") or [])
    labels = list((choices or {}).get("label") or [])
    if not question or not texts:
        return ""
    labels = labels if len(labels) == len(texts) else [chr(ord("A") + i) for i in range(len(texts))]
    lines = [f"Question: {question}", *(f"{lab}. {_s(t)}" for lab, t in zip(labels, texts))]
    key = _s(r.get("answerKey"))
    if key:
        answer = next((f"{lab}. {_s(t)}" for lab, t in zip(labels, texts) if lab == key), key)
        lines.append(f"Answer: {answer}")
    return "\n".join(lines)


_COMMENT = {"c": "//", "cpp": "//", "c++": "//", "csharp": "//", "c#": "//", "go": "//", "java": "//",
            "javascript": "//", "typescript": "//", "rust": "//", "swift": "//", "kotlin": "//", "scala": "//",
            "php": "//", "sql": "--", "lua": "--", "haskell": "--"}


def _code(r: Mapping[str, Any]) -> str:
    text = r["text"]
    if text is None or not str(text).strip():
        return ""
    mark = _COMMENT.get(_s(r.get("language")).lower(), "#")
    header = [f"{mark} repo: {_s(r['repo_name'])}" if _s(r.get("repo_name")) else "",
              f"{mark} path: {_s(r['path'])}" if _s(r.get("path")) else ""]
    header = [h for h in header if h]
    return ("\n".join(header) + "\n" if header else "") + str(text).rstrip() + "\n"


def _planning(r: Mapping[str, Any]) -> str:
    problem, thinking, answer = _s(r["problem"]), _s(r["thinking"]), _s(r["answer"])
    if not problem or not answer:
        return ""
    return f"<problem>{problem}</problem><thinking>{thinking}</thinking><answer>{answer}</answer>"


def _boolq(r: Mapping[str, Any]) -> str:
    passage, question, answer = _s(r["passage"]), _s(r["question"]), r["answer"]
    if not question:
        return ""
    if isinstance(answer, str):
        answer = answer.strip().lower() in ("true", "yes", "1")
    question = question[:1].upper() + question[1:] + ("" if question.endswith("?") else "?")
    return f"Passage: {passage}\n\nQuestion: {question}\n\nAnswer: {'Yes' if answer else 'No'}"


def unwrap_bytes_literal(value: Any) -> str:
    """deepmind/math_dataset's hub values are bytes literals, `b'Solve 2*x = 4 for x.\\n'`: the text inside
    (decoded, stripped). Plain text passes through unchanged."""
    text = _s(value)
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        try:
            raw = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(raw, bytes):
            return raw.decode("utf-8", "replace").strip()
    return text


def _math_dataset(r: Mapping[str, Any]) -> str:
    question, answer = unwrap_bytes_literal(r["question"]), unwrap_bytes_literal(r["answer"])
    if not question:
        return ""
    return f"Question: {question}\n\nAnswer: {answer}"


_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*(.*)$", re.S)


def _chat(r: Mapping[str, Any]) -> str:
    """Chat `messages` (smoltalk2). One user turn answered with `<think>trace</think> answer` becomes the model's
    own format, `<problem>..</problem><thinking>..</thinking><answer>..</answer>`; anything else is rendered
    turn by turn as `User: ...` / `Assistant: ...` (system turns as `System: ...`)."""
    messages = r["messages"]
    if isinstance(messages, str):
        messages = _parse_json(messages)
    turns = [(_s(m.get("role")).lower(), _s(m.get("content"))) for m in (messages or []) if isinstance(m, Mapping)]
    turns = [(role, text) for role, text in turns if text]
    convo = [t for t in turns if t[0] != "system"]
    if len(convo) == 2 and convo[0][0] == "user" and convo[1][0] == "assistant":
        m = _THINK.match(convo[1][1])
        if m and m.group(2).strip():
            return f"<problem>{convo[0][1]}</problem><thinking>{m.group(1).strip()}</thinking><answer>{m.group(2).strip()}</answer>"
    return "\n\n".join(f"{role.capitalize() or 'Unknown'}: {text}" for role, text in turns)


def _hellaswag(r: Mapping[str, Any]) -> str:
    ctx, endings, label = _s(r["ctx"]), list(r["endings"] or []), _s(r.get("label"))
    if not ctx:
        return ""
    if label.isdigit() and int(label) < len(endings):
        return f"{ctx} {_s(endings[int(label)])}"
    return ctx


def _sft(r: Mapping[str, Any]) -> str:
    return f"{r['prompt']}{r['completion']}"


def _dpo(r: Mapping[str, Any]) -> str:
    return f"{r['prompt']}{r['chosen']}"  # curation (dedup, decontamination) sees the chosen side


def _make(name: str, columns: set[str], fn: Callable[[Mapping[str, Any]], str], description: str, fix_hint: str = "",
          layout: Layout = "docs") -> Formatter:
    return Formatter(name, frozenset(columns), fn, description, fix_hint, layout)


_TEXT_FIX = "use the formatter for this dataset (e.g. gsm8k, apps, arc) or files with a `text` column"

FORMATTERS: dict[str, Formatter] = {
    f.name: f
    for f in [
        _make("text", {"text"}, _text, "the `text` column as is", _TEXT_FIX),
        _make("fineweb-edu", {"text"}, _text, "smollm-corpus fineweb-edu-dedup: `text` (score at metadata.score)", _TEXT_FIX),
        _make("cosmopedia", {"text"}, _text, "smollm-corpus cosmopedia-v2: `text` (the generation prompt is not trained on)", _TEXT_FIX),
        _make("finemath", {"text"}, _text, "HuggingFaceTB/finemath: `text` (metadata is a JSON string)", _TEXT_FIX),
        _make("gsm8k", {"question", "answer"}, _gsm8k, "openai/gsm8k: question, reasoning, and the `#### N` as a final answer line"),
        _make("apps", {"question", "solutions"}, _apps, "codeparrot/apps: problem, starter code, first solution (if any)"),
        _make("arc", {"question", "choices", "answerKey"}, _arc, "allenai/ai2_arc: question, labelled choices, answer"),
        _make("orca-math", {"question", "answer"}, _orca, "microsoft/orca-math-word-problems-200k: question and answer"),
        _make(
            "code", {"text"}, _code, "python-edu / stack-edu after hydration: path/repo header comment + file text",
            "these rows carry blob ids, not text: configure hydration for this source (`hydrate = {}` fetches "
            "s3://softwareheritage/content/{blob_id}), or use files with a `text` column",
        ),
        _make("planning", {"problem", "thinking", "answer"}, _planning,
              "planning records (Contract 3): <problem>..</problem><thinking>..</thinking><answer>..</answer>"),
        _make("boolq", {"question", "answer", "passage"}, _boolq, "google/boolq: passage, question, Yes/No"),
        _make("math-dataset", {"question", "answer"}, _math_dataset,
              "deepmind/math_dataset: question and answer (the hub's b'...\\n' bytes literals unwrapped)"),
        _make("chat", {"messages"}, _chat, "chat messages (smoltalk2): <think> traces in planning tags, else User:/Assistant: turns"),
        _make("hellaswag", {"ctx", "endings", "label"}, _hellaswag, "Rowan/hellaswag: the context and its right ending"),
        _make("sft", {"prompt", "completion"}, _sft, "SFT examples (Contract 3): prompt, then completion (the loss)",
              "point it at Contract 3 SFT records (`datakit synth sft`)", layout="sft"),
        _make("dpo", {"prompt", "chosen", "rejected"}, _dpo, "DPO pairs (Contract 3): prompt, chosen and rejected completions",
              "point it at Contract 3 DPO records (`datakit synth dpo`)", layout=PAIR_LAYOUT),
    ]
}


def get_formatter(name: str, *, file: str | None = None, source: str | None = None) -> Formatter:
    """The formatter called `name`; UserError listing the known names otherwise."""
    try:
        return FORMATTERS[name]
    except KeyError:
        raise UserError(
            f"unknown formatter {name!r}",
            file=file, field=_field(source, "format"),
            fix=f"use one of: {', '.join(FORMATTERS)}",
        ) from None


def is_example_format(name: str) -> bool:
    """Whether a spec's `format` names examples (sft, dpo) rather than documents; False for unknown names."""
    fmt = FORMATTERS.get(name)
    return fmt is not None and fmt.examples


def check_columns(fmt: Formatter, columns: set[str], *, file: str | None = None, source: str | None = None) -> None:
    """Fail before a build when the files lack a column the formatter needs (names the column and the fix)."""
    missing = sorted(fmt.required_columns - set(columns))
    if missing:
        raise UserError(
            f"formatter {fmt.name!r} needs column {missing[0]!r}, which the files do not have (they have: {', '.join(sorted(columns)) or 'none'})",
            file=file, field=_field(source, "format"), fix=fmt.fix_hint or _default_fix(fmt),
        )


__all__ = [
    "FORMATTERS", "EmptyTextError", "Formatter", "check_columns", "first_apps_solution", "get_formatter",
    "is_example_format", "json_column", "split_gsm8k_answer",
]
