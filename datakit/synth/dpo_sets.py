"""Reading synth sets (planning, DPO, SFT records) for `synth dpo`, `synth sft` and `synth verify`.

A set is a folder with `records/*.jsonl` (the synth output contract), a folder of `*.jsonl`, or one
`.jsonl` file. A partial last line left by a killed writer is skipped; any other line that is not a
JSON object is the user's problem and is reported with its file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from datakit.errors import UserError

PLANNING_FIELDS = ("domain", "problem", "thinking", "answer")


def record_files(src: str | Path, *, field: str = "from") -> list[Path]:
    """The JSONL files of a set; UserError when there is nothing to read."""
    src = Path(src)
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise UserError("folder not found", file=str(src), field=field, fix="pass a folder written by 'datakit synth ...'")
    files = sorted((src / "records").glob("*.jsonl")) if (src / "records").is_dir() else sorted(src.glob("*.jsonl"))
    if not files:
        raise UserError("no records/*.jsonl in this folder", file=str(src), field=field,
                        fix="point at the --out folder of 'datakit synth planning' (it has a records/ folder)")
    return files


def iter_set(src: str | Path, *, field: str = "from") -> Iterator[tuple[Path, int, dict]]:
    """(file, line number, record) for every complete line of the set."""
    for path in record_files(src, field=field):
        with open(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    break  # torn tail from a killed writer
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise UserError(f"line {lineno} is not JSON ({e.msg})", file=str(path), field="records",
                                    fix="remove or repair that line") from None
                if not isinstance(rec, dict):
                    raise UserError(f"line {lineno} is not a JSON object", file=str(path), field="records",
                                    fix="each line must be one record object")
                yield path, lineno, rec


def planning_problem(rec: dict) -> str | None:
    """What is wrong with `rec` as a Contract 3 planning record (None when it is one)."""
    missing = [k for k in PLANNING_FIELDS if not isinstance(rec.get(k), str) or not rec.get(k)]
    if missing:
        return f"missing planning field(s) {', '.join(missing)}"
    if not isinstance(rec.get("meta", {}), dict):
        return "meta is not an object"
    return None


def validate_planning_set(src: str | Path, *, need_instance: bool) -> dict:
    """Check every record of a planning set before anything is written.

    need_instance: the caller needs the structured instance (procedural flaws): an instance that does
    not parse for its domain is a UserError naming the file and line. Returns counts: records,
    with_instance, domains.
    """
    from datakit.synth.procedural import DOMAINS
    from datakit.synth.procedural.records import check_planning_record, instance_problem

    n = with_instance = 0
    domains: dict[str, int] = {}
    for path, lineno, rec in iter_set(src):
        problem = planning_problem(rec)
        if problem:
            raise UserError(f"line {lineno} is not a planning record: {problem}", file=str(path), field="from",
                            fix="--from takes the output folder of 'datakit synth planning' (records with domain, problem, thinking, answer)")
        n += 1
        domains[rec["domain"]] = domains.get(rec["domain"], 0) + 1
        inst = rec.get("meta", {}).get("instance")
        if inst is None:
            continue
        if rec["domain"] not in DOMAINS:
            raise UserError(f"line {lineno}: domain {rec['domain']!r} has no checker for its instance", file=str(path),
                            field="domain", fix=f"procedural domains are {', '.join(DOMAINS)}")
        problem = instance_problem(rec["domain"], inst)
        if problem:
            raise UserError(f"line {lineno}: the instance does not parse for {rec['domain']} ({problem})",
                            file=str(path), field="meta.instance",
                            fix="regenerate the set with 'datakit synth planning --provider procedural'")
        try:
            check_planning_record(rec)
        except Exception as e:  # noqa: BLE001 - any crash means the instance is not what its domain expects
            raise UserError(f"line {lineno}: the instance does not parse for {rec['domain']} ({type(e).__name__}: {e})",
                            file=str(path), field="meta.instance",
                            fix="regenerate the set with 'datakit synth planning --provider procedural'") from None
        with_instance += 1
    if n == 0:
        raise UserError("the set has no records", file=str(src), field="from", fix="generate some first")
    if need_instance and with_instance == 0:
        raise UserError("no record carries a structured instance, so no programmatic flaw can be proven",
                        file=str(src), field="from",
                        fix="use a --provider procedural set, or pass --provider azure (etc.) for LLM-made flaws")
    return {"records": n, "with_instance": with_instance, "domains": domains}
