"""Evaluation sets to decontaminate against, read from local files in their upstream schemas.

Names are "<benchmark>[:<config>]:<split>":

    gsm8k:test                   openai/gsm8k (config main)     question + answer
    ai2_arc:ARC-Challenge:test   allenai/ai2_arc                question + choices.text, item id = id
    apps:test                    codeparrot/apps (config all)   question, item id = problem_id (parquet mirror)
    hellaswag:validation         Rowan/hellaswag                ctx + endings, item id = ind

Each set is read from `decontaminate.files[name]` (jsonl, jsonl.gz, json or parquet; a glob is
allowed) or, without a file, from the local `datasets` cache in offline mode. Nothing is downloaded.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datakit.errors import UserError

# benchmark -> (hub repo, default config, required columns)
EVAL_SETS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "gsm8k": ("openai/gsm8k", "main", ("question", "answer")),
    "ai2_arc": ("allenai/ai2_arc", "ARC-Challenge", ("question", "choices")),
    "apps": ("codeparrot/apps", "all", ("question",)),
    "hellaswag": ("Rowan/hellaswag", None, ("ctx", "endings")),
}
# hub revision to read from the datasets cache: repos whose loading script datasets >= 4 no longer runs
REVISIONS = {"apps": "refs/convert/parquet", "hellaswag": "refs/convert/parquet"}


@dataclass(frozen=True)
class EvalItem:
    benchmark: str  # the eval set name as written, e.g. "gsm8k:test"
    item_id: str
    text: str  # everything a contaminated document could copy: question + answer / choices


def parse_eval_name(name: str) -> tuple[str, str, str]:
    """(benchmark, config, split) of "<benchmark>[:<config>]:<split>"; ValueError naming the known sets."""
    parts = name.split(":")
    if parts[0] not in EVAL_SETS or len(parts) not in (2, 3) or not all(parts):
        raise ValueError(
            f"unknown eval set {name!r}; known: "
            + ", ".join(f"{b}[:{cfg}]:<split>" if cfg else f"{b}:<split>" for b, (_, cfg, _) in EVAL_SETS.items())
        )
    bench = parts[0]
    config = parts[1] if len(parts) == 3 else EVAL_SETS[bench][1]
    return bench, config, parts[-1]


def _read_file(path: Path) -> list[dict[str, Any]]:
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    return data if isinstance(data, list) else data.get("data", [])


def _read_cache(name: str, bench: str, config: str, split: str, *, file: str) -> list[dict[str, Any]]:
    repo = EVAL_SETS[bench][0]
    old = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    try:
        import datasets

        return list(datasets.load_dataset(repo, config, split=split, revision=REVISIONS.get(bench)))
    except Exception as e:  # noqa: BLE001 - any failure means "not in the local cache"
        raise UserError(
            f"eval set {name} is not in the local datasets cache ({type(e).__name__})",
            file=file, field="curate.decontaminate.against",
            fix=f"download {repo} ({config}, {split}) once and set decontaminate.files.\"{name}\" = "
            "\"path/to/test.parquet\" (or .jsonl)",
        ) from None
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _choices_text(choices: Any) -> str:
    if isinstance(choices, str):
        choices = json.loads(choices)
    if isinstance(choices, dict):
        return " ".join(str(t) for t in choices.get("text", []))
    return " ".join(str(c) for c in choices or [])


def load_eval_set(name: str, files: dict[str, str], *, file: str, base_dir: Path | None = None) -> list[EvalItem]:
    """Items of one eval set; UserError if it cannot be read or has the wrong schema."""
    bench, config, split = parse_eval_name(name)
    field = f'curate.decontaminate.files."{name}"'
    if name in files:
        pattern = str(Path(base_dir or ".") / files[name]) if not os.path.isabs(files[name]) else files[name]
        paths = sorted(glob.glob(pattern)) or ([Path(pattern)] if Path(pattern).exists() else [])
        if not paths:
            raise UserError(f"eval set file {files[name]} does not exist", file=file, field=field,
                            fix="point it at a local jsonl/parquet file of the eval set")
        rows: list[dict] = []
        for p in paths:
            try:
                rows.extend(_read_file(Path(p)))
            except Exception as e:  # noqa: BLE001
                raise UserError(f"cannot read eval set file {p}: {e}", file=file, field=field,
                                fix="give a jsonl, jsonl.gz, json or parquet file") from None
    else:
        rows = _read_cache(name, bench, config, split, file=file)
    need = EVAL_SETS[bench][2]
    if not rows:
        raise UserError(f"eval set {name} has no rows", file=file, field=field, fix="check the file")
    missing = [c for c in need if c not in rows[0]]
    if missing:
        raise UserError(
            f"eval set {name} has the wrong schema: missing column(s) {', '.join(missing)}; "
            f"it has {', '.join(sorted(rows[0]))}", file=file, field=field,
            fix=f"give the upstream {EVAL_SETS[bench][0]} schema (columns {', '.join(need)})",
        )
    items = []
    for i, row in enumerate(rows):
        if bench == "gsm8k":
            item_id, text = str(i), f"{row['question']}\n{row['answer']}"
        elif bench == "ai2_arc":
            item_id, text = str(row.get("id", i)), f"{row['question']}\n{_choices_text(row['choices'])}"
        elif bench == "hellaswag":
            item_id, text = str(row.get("ind", i)), f"{row['ctx']}\n{_choices_text(row['endings'])}"
        else:
            item_id, text = str(row.get("problem_id", i)), str(row["question"])
        items.append(EvalItem(benchmark=name, item_id=item_id, text=text))
    return items
