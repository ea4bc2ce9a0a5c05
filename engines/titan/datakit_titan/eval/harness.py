"""Standard benchmarks through lm-evaluation-harness (`lm-eval`), offline, on local task data.

Each task is lm-eval's own YAML (`include:` of the installed task file: same prompt, few-shot count,
metrics and filters as the field reports) with only the data source replaced: `dataset_path: parquet`
over local files in the upstream layout `<root>/<hub repo as owner__name>/<config>/<split>-*.parquet`
(the layout of datakit's embedded samples, which are the default: a few dozen items per task with the
real schemas, enough to exercise the harness, not to rank models). Nothing is fetched from a hub.

    gsm8k          5-shot, exact match (strict `#### n` and flexible extraction)   openai/gsm8k main test (shots: train)
    arc_easy       0-shot, acc / acc_norm                                          allenai/ai2_arc ARC-Easy test
    arc_challenge  0-shot, acc / acc_norm                                          allenai/ai2_arc ARC-Challenge test
    hellaswag      0-shot, acc / acc_norm                                          Rowan/hellaswag validation
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path

from datakit.errors import UserError
from datakit.eval.benchmarks import CHANCE
from datakit.eval.stats import wilson

# task -> (lm-eval task file, {split: (repo folder, config)}, overrides, metrics to report (lm-eval keys))
TASKS: dict[str, tuple[str, dict[str, tuple[str, str]], dict, list[str]]] = {
    "gsm8k": ("gsm8k/gsm8k.yaml", {"train": ("openai__gsm8k", "main"), "test": ("openai__gsm8k", "main")}, {},
              ["exact_match,strict-match", "exact_match,flexible-extract"]),
    "arc_easy": ("arc/arc_easy.yaml", {"train": ("allenai__ai2_arc", "ARC-Easy"), "test": ("allenai__ai2_arc", "ARC-Easy")},
                 {"validation_split": None}, ["acc,none", "acc_norm,none"]),
    "arc_challenge": ("arc/arc_challenge.yaml", {"train": ("allenai__ai2_arc", "ARC-Challenge"), "test": ("allenai__ai2_arc", "ARC-Challenge")},
                      {"validation_split": None}, ["acc,none", "acc_norm,none"]),
    "hellaswag": ("hellaswag/hellaswag.yaml", {"validation": ("Rowan__hellaswag", "default")}, {"training_split": None},
                  ["acc,none", "acc_norm,none"]),
}
def default_data_root() -> Path:
    from datakit.sources.files import samples_dir

    return Path(samples_dir())


def split_files(root: Path, repo: str, config: str, split: str) -> list[str]:
    base = Path(root) / repo / config
    return sorted(glob.glob(str(base / f"{split}-*.parquet")) + glob.glob(str(base / split / "*.parquet")))


def task_yaml(task: str, root: Path) -> str:
    """lm-eval task YAML: the installed task file, with its data read from local parquet files."""
    import json

    import lm_eval

    src, splits, overrides, _ = TASKS[task]
    include = Path(lm_eval.__file__).parent / "tasks" / src
    files = {}
    for split, (repo, config) in splits.items():
        found = split_files(root, repo, config, split)
        if not found:
            raise UserError(f"no local data for task {task}: {split} split ({repo}/{config}/{split}-*.parquet)", file=root, field="--tasks-data",
                            fix=f"put the {split} parquet files of {repo.replace('__', '/')} ({config}) there, or leave --tasks-data out "
                                "to use the embedded samples")
        files[split] = found
    lines = [f"include: {json.dumps(str(include))}", f"task: {task}", "dataset_path: parquet", "dataset_name: null",
             f"dataset_kwargs: {json.dumps({'data_files': files})}"]
    lines += [f"{k}: {'null' if v is None else json.dumps(v)}" for k, v in overrides.items()]
    return "\n".join(lines) + "\n"


def run_tasks(model, tasks: list[str], *, root: Path | None = None, limit: int | None = None, batch_size: int = 8,
              log_samples: bool = False) -> dict:
    """Run lm-eval on `model` (datakit_titan.eval.model.EvalModel: its HF folder); per task the reported
    metrics with n and a 95% interval, plus lm-eval's own stderr where it gives one."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise UserError(f"unknown benchmark {unknown[0]!r}", field="--tasks", fix=f"use some of: {', '.join(TASKS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    root = Path(root) if root else default_data_root()
    with tempfile.TemporaryDirectory(prefix="datakit-lmeval-") as tmp:
        for t in tasks:
            Path(tmp, f"{t}.yaml").write_text(task_yaml(t, root))
        lm = HFLM(pretrained=model.model, tokenizer=str(model.hf_dir), max_length=model.context, batch_size=batch_size,
                  add_bos_token=True, device=model.device)
        # the task files' own generation length (gsm8k: 256 tokens) leaves no room for the prompt in a short-context
        # model (the demo's phase 1 trains at 256): there, answers are capped at a quarter of the context, and the result says so
        gen = {"max_gen_toks": model.context // 4} if model.context < 1024 else None
        res = simple_evaluate(model=lm, tasks=tasks, task_manager=TaskManager(include_path=tmp, include_defaults=False), limit=limit,
                              log_samples=log_samples, gen_kwargs=gen, bootstrap_iters=1000, random_seed=1234, numpy_random_seed=1234,
                              torch_random_seed=1234, fewshot_random_seed=1234)
    out = {"data": str(root), "samples_embedded": root == default_data_root(), "lm_eval_version": _version(), "tasks": {},
           "gen_kwargs_override": gen}
    for t in tasks:
        r = res["results"][t]
        n = int(res["n-samples"][t]["effective"])
        metrics = {}
        for key in TASKS[t][3]:
            v = r.get(key)
            if v is None:
                continue
            se = r.get(key.replace(",", "_stderr,", 1))
            metrics[key] = {"value": float(v), "n": n, "ci95": list(wilson(round(float(v) * n), n)),
                            "stderr": float(se) if isinstance(se, (int, float)) else None}
        out["tasks"][t] = {"n": n, "num_fewshot": res["n-shot"].get(t) if "n-shot" in res else None, "metrics": metrics,
                           "chance": CHANCE[t]}
        if log_samples:
            out["tasks"][t]["samples"] = res["samples"][t]
    return out


def _version() -> str:
    from importlib.metadata import version

    return version("lm-eval")
