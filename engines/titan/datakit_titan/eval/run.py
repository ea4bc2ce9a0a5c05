"""`titan eval`: run the named suites on one model and write `<run>/eval/<step>.json`.

Suites
    core       held-out loss / perplexity per source (the build's held-out slice) + lm-eval benchmarks
               (gsm8k 5-shot, arc_easy, arc_challenge, hellaswag; local task data)
    planning   verified planning accuracy: held-out procedural problems (eval-only seeds, proven disjoint
               from the training records), answered greedily (+ pass@k sampled), checked by the domains' checkers
    longctx    loss by position bucket (0-2K, 2-4K, 4-8K) on held-out documents + passkey retrieval at 2K/4K/8K

The result file carries the checkpoint, tokenizer and data hashes; it also goes to TensorBoard
(`<run>/eval/tb`) and wandb (offline by default).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from datakit.errors import UserError

SUITES = ("core", "planning", "longctx")
PLANNING_MAX_NEW_TOKENS = 384
PASSKEY_ANSWER_TOKENS = 8  # room left after a passkey prompt for the 5-digit answer


@dataclass
class EvalOptions:
    suites: list[str] = field(default_factory=lambda: ["core"])
    tasks: list[str] = field(default_factory=lambda: ["gsm8k", "arc_easy", "arc_challenge", "hellaswag"])
    tasks_data: Path | None = None
    limit: int | None = None  # items per benchmark (None: all the local data has)
    heldout: Path | None = None  # held-out mixture (default: <the run's mixture>/heldout)
    planning_per_cell: int = 4  # problems per domain x difficulty
    difficulties: tuple[str, ...] = ("easy", "medium", "hard")
    samples: int = 4  # pass@k: sampled completions per problem (1 = greedy only)
    max_new_tokens: int = PLANNING_MAX_NEW_TOKENS
    training_records: list[Path] = field(default_factory=list)  # extra planning records to prove disjointness against
    longctx_lengths: tuple[int, ...] = (2048, 4096, 8192)
    passkeys_per_length: int = 3
    batch: int = 16
    wandb: str = "offline"  # offline | online | off
    tensorboard: bool = True


def parse_suites(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SUITES]
    if unknown or not names:
        raise UserError(f"unknown eval suite {unknown[0]!r}" if unknown else "no eval suite named", field="--suite",
                        fix=f"use a comma-separated list of: {', '.join(SUITES)}")
    return list(dict.fromkeys(names))


def check_longctx(model, opts: EvalOptions) -> None:
    """Before any work: a probe longer than the model's trained context is a user error."""
    if "longctx" in opts.suites and max(opts.longctx_lengths) > model.context:
        raise UserError(f"the long-context probe needs {max(opts.longctx_lengths):,} tokens but this model was trained at {model.context:,}",
                        field="--longctx-lengths", fix=f"evaluate the phase-3 (8192) model, or pass --longctx-lengths up to {model.context}")


def synth_folders(mixture: Path | None) -> list[Path]:
    """The planning record folders a mixture was built from (its synth:// and planning-format sources)."""
    if mixture is None or not (Path(mixture) / "manifest.json").is_file():
        return []
    from datakit.contract import load_manifest

    out = []
    for s in load_manifest(mixture).sources:
        if s.uri.startswith("synth://"):
            out.append(Path(s.uri.removeprefix("synth://")))
        elif s.uri.startswith("file://") and s.format in ("planning", "sft", "dpo"):
            out.append(Path(s.uri.removeprefix("file://")).parent)
    return [p for p in out if p.exists()]


def run_planning(model, opts: EvalOptions) -> dict:
    from datakit.eval.planning import evaluate, heldout_problems, prove_disjoint, training_records

    problems = heldout_problems(opts.planning_per_cell, opts.difficulties)
    records = training_records([*synth_folders(model.mixture), *opts.training_records])
    if model.mixture is not None:  # the mixture's own samples:// planning sources, too
        from datakit.contract import load_manifest

        for s in load_manifest(model.mixture).sources:
            if s.uri.startswith("samples://") and s.format == "planning":
                from datakit.sources.files import samples_dir

                records += training_records(sorted(Path(samples_dir()).glob(s.uri.removeprefix("samples://"))))
    disjoint = prove_disjoint(problems, records)
    fits = [p for p in problems if model.count_tokens(p.prompt) + 32 <= model.context]
    started = time.perf_counter()

    def generate(prompts, n):
        return model.generate(prompts, n=n, max_new_tokens=opts.max_new_tokens, batch=opts.batch)

    result = evaluate(fits, generate, samples=opts.samples) if fits else {"n_problems": 0}
    seconds = time.perf_counter() - started
    result.update(disjoint=disjoint, skipped_prompt_too_long=len(problems) - len(fits), seconds=round(seconds, 2),
                  items_per_s=round(len(fits) * (1 + (opts.samples if opts.samples > 1 else 0)) / seconds, 3) if fits else None,
                  max_new_tokens=opts.max_new_tokens, difficulties=list(opts.difficulties), per_cell=opts.planning_per_cell)
    return result


def run_longctx(model, opts: EvalOptions, heldout: Path) -> dict:
    from datakit.eval.longctx import passkey_correct, passkey_prompts
    from datakit.eval.stats import wilson
    from datakit_titan.eval.loss import position_loss

    edges = [0, *opts.longctx_lengths]
    out = {"position_loss": position_loss(model, heldout, buckets=list(zip(edges[:-1], edges[1:])))}
    probes = passkey_prompts(model.count_tokens, opts.longctx_lengths, opts.passkeys_per_length, answer_tokens=PASSKEY_ANSWER_TOKENS)
    answers = model.generate([p.prompt for p in probes], n=1, max_new_tokens=PASSKEY_ANSWER_TOKENS, batch=2)
    per_len: dict[str, dict] = {}
    for p, a in zip(probes, answers):
        d = per_len.setdefault(str(p.length), {"n": 0, "hits": 0, "tokens": []})
        d["n"] += 1
        d["hits"] += passkey_correct(p.key, a[0])
        d["tokens"].append(model.count_tokens(p.prompt))
    for d in per_len.values():
        d["rate"], d["ci95"], d["max_prompt_tokens"] = d["hits"] / d["n"], list(wilson(d["hits"], d["n"])), max(d.pop("tokens"))
    out["passkey"] = per_len
    return out


def evaluate_model(model, opts: EvalOptions) -> dict:
    """Run the suites on an opened model (datakit_titan.eval.model.EvalModel); returns the result dict."""
    check_longctx(model, opts)
    heldout = opts.heldout
    if heldout is None and ("core" in opts.suites or "longctx" in opts.suites):
        if model.mixture is None:
            raise UserError("no held-out data: an HF export does not say which mixture it trained on", field="--mixture",
                            fix="pass --mixture <the mixture it trained on> (its heldout/ slice is used) or --data <held-out mixture>")
        from datakit_titan.eval.loss import heldout_folder

        heldout = heldout_folder(model.mixture)
    result: dict = {"format": "datakit.eval/1", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "model": {"source": str(model.run or model.hf_dir), "step": model.step, "context": model.context,
                              "hf_dir": str(model.hf_dir), "device": model.device, **model.hashes},
                    "mixture": str(model.mixture) if model.mixture else None, "suites": list(opts.suites), "seconds": {}}
    if model.run is not None:
        result["phase"] = _phase_name(model)
    if "core" in opts.suites:
        from datakit_titan.eval.harness import run_tasks
        from datakit_titan.eval.loss import heldout_loss

        t = time.perf_counter()
        result["heldout"] = heldout_loss(model, heldout)
        result["seconds"]["heldout"] = round(time.perf_counter() - t, 2)
        if opts.tasks:
            t = time.perf_counter()
            result["benchmarks"] = run_tasks(model, opts.tasks, root=opts.tasks_data, limit=opts.limit, batch_size=opts.batch)
            result["seconds"]["benchmarks"] = round(time.perf_counter() - t, 2)
    if "planning" in opts.suites:
        t = time.perf_counter()
        result["planning"] = run_planning(model, opts)
        result["seconds"]["planning"] = round(time.perf_counter() - t, 2)
    if "longctx" in opts.suites:
        t = time.perf_counter()
        result["longctx"] = run_longctx(model, opts, heldout)
        result["seconds"]["longctx"] = round(time.perf_counter() - t, 2)
    return result


def _phase_name(model) -> str | None:
    try:
        import tomllib

        return tomllib.loads((Path(model.run) / "phase.toml").read_text())["phase"]["name"]
    except (OSError, KeyError, ValueError):
        return Path(model.run).name


def result_path(model, out: Path | None) -> Path:
    if out is not None:
        return Path(out)
    base = Path(model.run) if model.run is not None else Path(model.hf_dir)
    return base / "eval" / (f"{model.step}.json" if model.step is not None else "export.json")


def write_result(result: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(path)
    return path


def scalars(result: dict) -> dict[str, float]:
    """Flat metric name -> value, for TensorBoard / wandb and the report."""
    out: dict[str, float] = {}
    h = result.get("heldout")
    if h:
        if h["all"]["loss"] is not None:
            out["heldout/loss"] = h["all"]["loss"]
        for src, s in h["sources"].items():
            if s["loss"] is not None:
                out[f"heldout/{src}/loss"] = s["loss"]
    for task, r in ((result.get("benchmarks") or {}).get("tasks") or {}).items():
        for key, m in r["metrics"].items():
            out[f"bench/{task}/{key.replace(',', '/')}"] = m["value"]
    p = result.get("planning") or {}
    for key in ("valid", "optimal", "format_error"):
        v = ((p.get("greedy") or {}).get("all") or {}).get(key) or {}
        if v.get("rate") is not None:
            out[f"planning/{key}"] = v["rate"]
    if (p.get("pass_at_k") or {}).get("all", {}).get("rate") is not None:
        out[f"planning/pass@{p['pass_at_k']['k']}"] = p["pass_at_k"]["all"]["rate"]
    lc = result.get("longctx") or {}
    for b, v in ((lc.get("position_loss") or {}).get("buckets") or {}).items():
        if v["loss"] is not None:
            out[f"longctx/loss_{b}"] = v["loss"]
    for length, v in (lc.get("passkey") or {}).items():
        out[f"longctx/passkey_{length}"] = v["rate"]
    return out


def log_result(result: dict, eval_dir: Path, *, wandb_mode: str = "offline", tensorboard: bool = True) -> list[str]:
    """TensorBoard scalars under <eval_dir>/tb and a wandb run (offline: a local folder to sync later)."""
    step = result["model"].get("step") or 0
    flat = scalars(result)
    where = []
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        w = SummaryWriter(str(eval_dir / "tb"))
        for k, v in flat.items():
            w.add_scalar(f"eval/{k}", v, step)
        w.close()
        where.append(str(eval_dir / "tb"))
    if wandb_mode not in ("offline", "online", "off"):
        raise UserError(f"unknown wandb mode {wandb_mode!r}", field="--wandb", fix="use offline, online or off")
    if wandb_mode != "off":
        import wandb

        run = wandb.init(project="datakit-eval", name=f"{result.get('phase') or 'model'}-step{step}", mode=wandb_mode, dir=str(eval_dir),
                         config={"suites": result["suites"], **{k: v for k, v in result["model"].items() if isinstance(v, (str, int))}})
        run.log({f"eval/{k}": v for k, v in flat.items()}, step=step)
        run.finish()
        where.append(f"wandb ({wandb_mode}) under {eval_dir / 'wandb'}")
    return where
