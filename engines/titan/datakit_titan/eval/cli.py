"""`titan eval` and `titan eval-report` (registered in datakit_titan.cli).

    titan eval outputs/pretrain --suite core
    titan eval outputs/midtrain --suite core,planning --compare outputs/pretrain
    titan eval outputs/longctx_sft_dpo --suite core,planning,longctx
    titan eval exports/midtrain-hf --mixture data/mixtures/midtrain --suite core
    titan eval-report outputs/
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from datakit.errors import UserError


def _ints(text: str, field: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"{text!r} is not a list of token counts", field=field, fix="write e.g. 2048,4096,8192") from None
    if not vals or min(vals) < 16:
        raise UserError(f"{text!r}: lengths must be >= 16 tokens", field=field, fix="write e.g. 2048,4096,8192")
    return tuple(sorted(vals))


def eval_cmd(
    source: Path = typer.Argument(..., help="a run's output folder (outputs/midtrain), a step-N folder, a phase file, or an HF export folder"),
    suite: str = typer.Option("core", "--suite", help="comma-separated: core (held-out loss + benchmarks), planning (verified "
                              "planning accuracy), longctx (loss by position + passkey)"),
    compare: Path = typer.Option(None, "--compare", help="another run (or its eval json) to print side by side, e.g. outputs/pretrain"),
    step: int = typer.Option(None, help="evaluate this step's checkpoint (default: the newest complete one)"),
    phase: Path = typer.Option(None, "--phase", help="the phase file the run was trained with (default: <run>/phase.toml)"),
    mixture: Path = typer.Option(None, "--mixture", help="HF export: the mixture it trained on (tokenizer check; held-out slice)"),
    data: Path = typer.Option(None, "--data", help="held-out mixture for the loss (default: <mixture>/heldout, written by the build)"),
    tasks: str = typer.Option("gsm8k,arc_easy,arc_challenge,hellaswag", help="lm-eval benchmarks of the core suite ('' for none)"),
    tasks_data: Path = typer.Option(None, "--tasks-data", help="local task data, laid out <owner>__<name>/<config>/<split>-*.parquet "
                                    "(default: datakit's embedded samples)"),
    limit: int = typer.Option(None, help="at most this many items per benchmark"),
    per_cell: int = typer.Option(4, "--per-cell", help="planning: problems per domain and difficulty"),
    difficulties: str = typer.Option("easy,medium,hard", help="planning difficulties"),
    samples: int = typer.Option(4, help="planning: sampled completions per problem for pass@k (1: greedy only)"),
    max_new_tokens: int = typer.Option(384, help="planning: longest answer in tokens"),
    training_records: list[Path] = typer.Option([], "--training-records", help="more planning record folders to prove the eval split disjoint from"),
    longctx_lengths: str = typer.Option("2048,4096,8192", "--longctx-lengths", help="longctx: passkey prompt lengths / position-bucket edges"),
    batch: int = typer.Option(16, help="rows per forward / generation batch"),
    device: str = typer.Option(None, help="cuda or cpu (default: cuda when available)"),
    out: Path = typer.Option(None, "--out", help="result file (default: <run>/eval/<step>.json)"),
    wandb: str = typer.Option("offline", help="offline | online | off"),
    tensorboard: bool = typer.Option(True, "--tensorboard/--no-tensorboard", help="scalars under <run>/eval/tb"),
):
    """Evaluate one model: held-out loss per source, lm-eval benchmarks on local data, planning answers
    verified by the procedural checkers, long-context probes. Writes <run>/eval/<step>.json (with checkpoint,
    tokenizer and data hashes), TensorBoard scalars and a wandb run (offline), and prints a table.

    Example: titan eval outputs/midtrain --suite core,planning --compare outputs/pretrain
    """
    from datakit.eval.planning import DIFFICULTIES
    from datakit.eval.report import table
    from datakit_titan.eval.model import open_model
    from datakit_titan.eval.run import EvalOptions, evaluate_model, log_result, parse_suites, result_path, write_result

    diffs = tuple(d.strip() for d in difficulties.split(",") if d.strip())
    if not diffs or any(d not in DIFFICULTIES for d in diffs):
        raise UserError(f"unknown difficulty in {difficulties!r}", field="--difficulties", fix="use some of easy,medium,hard")
    if samples < 1 or per_cell < 1:
        raise UserError("--samples and --per-cell must be >= 1", field="--samples", fix="e.g. --samples 4 --per-cell 4")
    opts = EvalOptions(suites=parse_suites(suite), tasks=[t.strip() for t in tasks.split(",") if t.strip()], tasks_data=tasks_data,
                       limit=limit, heldout=data, planning_per_cell=per_cell, difficulties=diffs, samples=samples,
                       max_new_tokens=max_new_tokens, training_records=list(training_records),
                       longctx_lengths=_ints(longctx_lengths, "--longctx-lengths"), batch=batch, wandb=wandb, tensorboard=tensorboard)
    if opts.tasks:
        from datakit_titan.eval.harness import TASKS

        bad = [t for t in opts.tasks if t not in TASKS]
        if bad:
            raise UserError(f"unknown benchmark {bad[0]!r}", field="--tasks", fix=f"use some of: {', '.join(TASKS)}")
    if wandb not in ("offline", "online", "off"):
        raise UserError(f"unknown wandb mode {wandb!r}", field="--wandb", fix="use offline, online or off")
    model = open_model(source, mixture=mixture, step=step, phase=phase, device=device)
    result = evaluate_model(model, opts)
    path = write_result(result, result_path(model, out))
    where = log_result(result, path.parent, wandb_mode=wandb, tensorboard=tensorboard)
    shown = [_load_compare(compare), result] if compare else [result]
    for r, p in zip(shown, [compare, path] if compare else [path]):
        r.setdefault("_file", str(p))
    print(table(shown))
    print(f"wrote {path}" + (f"; logged to {', '.join(where)}" if where else ""))


def _load_compare(path: Path) -> dict:
    from datakit.eval.report import find_results

    if path.suffix == ".json":
        if not path.is_file():
            raise UserError("does not exist", file=path, field="--compare", fix="pass a run folder or an eval json")
        return json.loads(path.read_text())
    found = find_results(path)
    return found[-1]


def eval_report(
    root: Path = typer.Argument(..., help="the folder holding the runs (e.g. outputs/); reads <run>/eval/<step>.json"),
    out: Path = typer.Option(None, "--out", help="where eval_report.md / .png go (default: the folder itself)"),
):
    """One table and one chart across phases: held-out loss per source, benchmarks beside chance and
    published anchors, verified planning accuracy, long-context probes, each with sample counts and 95%
    intervals. Writes eval_report.md and eval_report.png.

    Example: titan eval-report outputs/
    """
    from datakit.eval.report import table, write_report

    md, png, results = write_report(root, out)
    print(table(results))
    print(f"wrote {md} and {png}")
