"""The GPU benchmark of the plan's model through the real `titan run` path (run it with benchmarks/gpu/run.sh).

    benchmarks/gpu/run.sh                 # one H100/H200: plan-1.6b, bf16, runs started within --budget-s (420 s)
    benchmarks/gpu/run.sh --smoke         # CPU, tiny preset, a few steps of every section (CI: never rots)
    benchmarks/gpu/run.sh --only seq2048 fits

Writes gpu_bench.json and gpu_bench.md (and the run logs) to $OUT when set, else benchmarks/gpu/out/.
Every run is a phase file handed to datakit_titan.launch.run_phase (either kind of phase): the same checks,
launcher and TorchTitan trainer as `titan run`, on data built here by `datakit mix build` (the Python
standard library as text; a 65,536-entry tokenizer trained on it) and by `datakit synth` (procedural
SFT + DPO records) for phase 3. Sections, in order of priority (a section that would pass the time
budget is skipped and says so):

  seq2048    tokens/s, MFU, peak memory: AdamW and the shard-aware Adafactor, torch.compile off/on
             (no activation checkpointing, fp32 master weights + bf16 compute, 4 rows of 2048)
  phase3     seq 8192 SFT + DPO (chosen + rejected rows, full activation checkpointing, as
             engines/titan/phases/longctx_sft_dpo.toml but compile off), from the seq2048 run's weights
  fits       the plan's single-GPU phase files as committed (midtrain.toml = pretrain's seq-2048 stage;
             longctx_sft_dpo.toml; eager) under a CUDA memory cap of 16 GiB (RTX 5080), then 32 (5090),
             then 80 (A100) until they fit: yes/no with the peak
  attention  the seq2048 AdamW eager step with document masking off (plain causal rows: the masking's
             cost), and with TorchTitan's flash kernels for document masking: varlen, flex_flash (Hopper+)
Each measured peak sits beside `titan estimate`'s prediction for the same configuration (error in %).
MFU and tokens/s are TorchTitan's own (its metrics log), median over the steps after the warm-up.
Anchors (MFU at this scale): torchtitan Llama3-8B on H100 33-39 %, OLMo-core 1B ~40 %, TinyLlama 1.1B
56 % on A100. Goal: >= 40 % at seq 2048 on H100/H200.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import sysconfig
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PHASES = REPO / "engines" / "titan" / "phases"
ANCHORS = "torchtitan Llama3-8B on H100 33-39 % MFU; OLMo-core 1B ~40 %; TinyLlama 1.1B 56 % on A100"
CARDS = [("rtx5080", 16), ("rtx5090", 32), ("a100", 80)]  # GiB each card has


@dataclass
class Scale:
    model: str
    vocab: int
    seq: int
    seq_long: int
    rows: int
    steps: int
    warmup: int  # logged steps left out of the medians (compilation, allocator warm-up)
    corpus_mb: float
    device: str


GPU = Scale("plan-1.6b", 65_536, 2048, 8192, 4, 10, 3, 30.0, "cuda")
SMOKE = Scale("tiny", 2048, 128, 2048, 2, 4, 1, 3.0, "cpu")


@dataclass
class Run:
    section: str
    name: str
    config: dict
    status: str = "skipped"  # ok | oom | error | skipped
    note: str = ""
    tps: float | None = None
    mfu_pct: float | None = None
    peak_gib: float | None = None
    estimate_gib: float | None = None
    wall_s: float = 0.0
    log: str = ""
    steps: list[dict] = field(default_factory=list)

    @property
    def estimate_error_pct(self) -> float | None:
        if self.peak_gib is None or not self.estimate_gib or self.peak_gib <= 0:
            return None
        return 100 * (self.estimate_gib - self.peak_gib) / self.peak_gib


# -- data ----------------------------------------------------------------------------------------------
def write_corpus(folder: Path, target_mb: float) -> None:
    """Python's standard library sources as jsonl.gz documents (each file once, then cycled)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts)
    folder.mkdir(parents=True, exist_ok=True)
    size, copy, n = 0, 0, 0
    with gzip.open(folder / "part-000.jsonl.gz", "wt", compresslevel=1) as f:
        while size < target_mb * 1e6:
            for p in files:
                try:
                    text = p.read_text(encoding="utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                if text.strip():
                    f.write(json.dumps({"text": f"# {copy} {p.relative_to(stdlib)}\n{text}", "id": str(n)}) + "\n")
                    size, n = size + len(text), n + 1
                if size >= target_mb * 1e6:
                    break
            copy += 1


def _train_tokenizer(corpus: str, out: str, vocab: int) -> None:
    import gzip as gz

    from datakit.tokenizer.train import train_tokenizer

    seen, texts = set(), []
    with gz.open(Path(corpus) / "part-000.jsonl.gz", "rt") as f:
        for line in f:
            body = json.loads(line)["text"].split("\n", 1)[1]
            if body not in seen:
                seen.add(body)
                texts.append(body)
    train_tokenizer(texts, out, vocab, min_frequency=1, strict=False)


def prepare(work: Path, s: Scale, log) -> dict[str, Path]:
    """Tokenizer, the LM mixture and the phase-3 (SFT + DPO) mixture, built with datakit itself."""
    import multiprocessing as mp

    from datakit.mix.build import build_mixture
    from datakit.mix.pipeline import ExecutorOptions
    from datakit.spec import load_spec
    from datakit.tokenizer.train import tokenizer_vocab_size

    corpus, tok = work / "corpus", work / "tokenizer" / "tokenizer.json"
    if not corpus.exists():
        write_corpus(corpus, s.corpus_mb)
    if not tok.exists():  # in a child process: no Rust tokenizer in this one before datatrove forks
        p = mp.get_context("spawn").Process(target=_train_tokenizer, args=(str(corpus), str(tok), s.vocab))
        p.start()
        p.join()
    vocab = tokenizer_vocab_size(tok)
    if vocab != s.vocab:
        raise SystemExit(f"the benchmark corpus gave a {vocab:,}-entry tokenizer, not {s.vocab:,}")
    workers = min(8, os.cpu_count() or 1)
    lm = work / "mix-lm"
    spec = work / "lm.toml"
    spec.write_text(f'[mixture]\nname = "bench-lm"\nseq_len = {s.seq}\ntokenizer = "{tok}"\nvocab_size = {vocab}\noutput = "{lm}"\n'
                    f'[[source]]\nname = "code"\nuri = "file://{corpus}/*.jsonl.gz"\nformat = "text"\ntokens = "all"\n')
    m = build_mixture(load_spec(spec), ExecutorOptions(workers=workers), progress=False)
    log(f"LM mixture: {m.total_tokens:,} tokens, vocab {vocab:,}")

    from datakit.synth.dpo import make_dpo
    from datakit.synth.procedural import generate
    from datakit.synth.sft import make_sft

    records, sft, dpo = work / "synth" / "procedural", work / "synth" / "sft", work / "synth" / "dpo"
    generate(records, count=40, seed=1, difficulty="easy", progress=False)
    make_sft(records, sft, progress=False)
    make_dpo(records, dpo, progress=False)
    prefs = work / "mix-prefs"
    spec = work / "prefs.toml"
    spec.write_text(
        f'[mixture]\nname = "bench-prefs"\nseq_len = {s.seq_long}\ntokenizer = "{tok}"\nvocab_size = {vocab}\noutput = "{prefs}"\n'
        f'[[source]]\nname = "context-docs"\nuri = "file://{corpus}/*.jsonl.gz"\nformat = "text"\ntokens = 0\n'
        f'[[source]]\nname = "planning-sft"\nuri = "synth://{sft}"\nformat = "sft"\ntokens = "all"\ncontext = {{ sources = ["context-docs"] }}\n'
        f'[[source]]\nname = "planning-dpo"\nuri = "synth://{dpo}"\nformat = "dpo"\ntokens = "all"\ncontext = {{ sources = ["context-docs"] }}\n'
    )
    m = build_mixture(load_spec(spec), ExecutorOptions(workers=workers), progress=False)
    log(f"phase-3 mixture: {m.total_tokens:,} tokens at seq_len {s.seq_long}")
    return {"lm": lm, "prefs": prefs, "tokenizer": tok}


# -- phase files ----------------------------------------------------------------------------------------
def lm_phase(path: Path, name: str, mixture: Path, out: Path, s: Scale, *, optimizer: str, compile_: bool, attention: str = "flex",
             document_masking: bool = True) -> Path:
    path.write_text(f"""[phase]
name = "{name}"
mixture = "{mixture}"
output = "{out}"
model = "{s.model}"
tokens = {s.steps * s.rows * s.seq}
seed = 1
[[stage]]
seq_len = {s.seq}
[batch]
per_gpu = {s.rows}
grad_accum = 1
[optimizer]
name = "{optimizer}"
lr = 1e-4
warmup_steps = 1
[checkpoint]
interval = 1000000
keep_last = 0
[metrics]
log_every = 1
wandb = "off"
tensorboard = false
[parallel]
activation_checkpointing = "none"
compile = {str(compile_).lower()}
param_dtype = "float32"
mixed_precision = "{'bfloat16' if s.device == 'cuda' else 'float32'}"
attention = "{attention}"
document_masking = {str(document_masking).lower()}
""")
    return path


def _edit_phase(source: Path, path: Path, stage: list[dict] | None = None, **tables) -> Path:
    """Copy a phase file with some keys changed: `tables` maps a table name to {key: value} (None removes the key);
    `stage` replaces the [[stage]] list.

    Structured (tomllib in, tomli_w out), so a committed phase file that gains tables or reorders them still
    rewrites correctly."""
    import tomli_w

    data = tomllib.loads(source.read_text())
    for table, values in tables.items():
        section = data.setdefault(table, {})
        for key, value in values.items():
            if value is None:
                section.pop(key, None)
            else:
                section[key] = str(value) if isinstance(value, Path) else value
    if stage is not None:
        data["stage"] = stage
    path.write_text(f"# {source.name}, rewritten by benchmarks/gpu/bench.py\n" + tomli_w.dumps(data))
    return path


def prefs_phase(path: Path, name: str, mixture: Path, out: Path, init_from: Path, s: Scale) -> Path:
    """As engines/titan/phases/longctx_sft_dpo.toml (2 rows = one pair, full AC, its optimizer and dtype) but
    compile off (the compile cost is measured at seq 2048) and a handful of steps."""
    return _edit_phase(
        PHASES / "longctx_sft_dpo.toml", path, stage=[{"seq_len": s.seq_long}],
        phase={"name": name, "mixture": mixture, "output": out, "init_from": init_from, "model": s.model,
               "tokens": s.steps * 2 * s.seq_long, "mixture_spec": None},
        batch={"grad_accum": 1},
        optimizer={"warmup_steps": 1},
        metrics={"wandb": "off", "tensorboard": False, "log_every": 1},
        parallel={"compile": False, "gpu": "", **({"param_dtype": "float32", "mixed_precision": "float32"} if s.device == "cpu" else {})},
    )


def committed_phase(path: Path, source: str, mixture: Path, out: Path, steps: int, init_from: Path | None = None,
                    model: str | None = None) -> Path:
    """A committed phase file pointed at the benchmark's data; everything else as committed (`model` only for the
    CPU smoke check). Its token budget is set far beyond the run (the LR schedule as in a real run) and repetition
    allowed, since `--steps` stops it. Stage seq_len = "mixture" is written as the committed file's value (its
    spec's), so the rewrite does not depend on the benchmark mixture being built yet."""
    from datakit_titan.kinds import load_any_phase

    stages = tomllib.loads((PHASES / source).read_text())["stage"]
    for raw, resolved in zip(stages, load_any_phase(PHASES / source).stage):
        raw["seq_len"] = resolved.seq_len
    return _edit_phase(
        PHASES / source, path, stage=stages,
        phase={"mixture": mixture, "output": out, "tokens": 10**12, "max_epochs": 1e12, "mixture_spec": None,
               "init_from": init_from or "", **({"model": model} if model else {})},
        metrics={"wandb": "off"},
        parallel={"gpu": "", "compile": False},  # gpu "": measured here, the estimate's verdict is reported beside it
    )


# -- running and reading a run -------------------------------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STEP = re.compile(r"step:\s*(\d+).*?memory:\s*(-?[\d.]+)GiB.*?tps:\s*([\d,]+).*?mfu:\s*(-?[\d.]+%|N/A)")


def parse_steps(log_text: str) -> list[dict]:
    steps = {}
    for line in _ANSI.sub("", log_text).splitlines():
        m = _STEP.search(line)
        if m:  # on CPU TorchTitan logs memory -0.00 GiB and MFU 0.00 % (no device stats, no CPU peak): None
            mfu = None if m.group(4) == "N/A" else float(m.group(4).rstrip("%"))
            memory = float(m.group(2))
            steps[int(m.group(1))] = {"step": int(m.group(1)), "memory_gib": memory if memory > 0 else None,
                                      "tps": float(m.group(3).replace(",", "")), "mfu_pct": mfu if mfu else None}
    return [steps[k] for k in sorted(steps)]


def summarize(run: Run, warmup: int) -> None:
    run.steps = parse_steps(Path(run.log).read_text()) if run.log and Path(run.log).exists() else []
    timed = run.steps[warmup:] or run.steps[-1:]
    if timed:
        run.tps = statistics.median(x["tps"] for x in timed)
        mfus = [x["mfu_pct"] for x in timed if x["mfu_pct"] is not None]
        run.mfu_pct = statistics.median(mfus) if mfus else None
        peaks = [x["memory_gib"] for x in run.steps if x["memory_gib"] is not None]
        run.peak_gib = max(peaks) if peaks else None


def estimate_gib(phase_path: Path, vocab: int) -> float:
    from datakit_titan.estimate import GIB, memory_per_gpu
    from datakit_titan.kinds import load_any_phase
    from datakit_titan.presets import PRESETS

    ph = load_any_phase(phase_path)
    m = memory_per_gpu(PRESETS[ph.phase.model], vocab, seq_len=max(st.seq_len for st in ph.stage), micro_batch=ph.batch.per_gpu,
                       optimizer=ph.optimizer.name, param_dtype=ph.parallel.param_dtype,
                       activation_checkpointing=ph.parallel.activation_checkpointing,
                       reshard_after_forward=ph.parallel.fsdp_reshard_after_forward)
    return m["total"] / GIB


class Bench:
    def __init__(self, s: Scale, out: Path, work: Path, budget_s: float):
        self.s, self.out, self.work, self.budget_s = s, out, work, budget_s
        self.t0 = time.monotonic()
        self.runs: list[Run] = []
        (out / "logs").mkdir(parents=True, exist_ok=True)

    def log(self, msg: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.0f} s] {msg}", flush=True)

    def left_s(self) -> float:
        return self.budget_s - (time.monotonic() - self.t0)

    def run(self, section: str, name: str, phase_path: Path, *, config: dict, need_s: float, cap_gib: float | None = None,
            keep_checkpoint: bool = False, steps: int | None = None) -> Run:
        """One `titan run` of phase_path for `steps` (default s.steps) steps; OOM and errors are results, not crashes."""
        steps = steps or self.s.steps
        from datakit_titan.launch import run_phase
        from datakit_titan.trainer import ENV_MEMORY_CAP

        run = Run(section, name, config)
        self.runs.append(run)
        try:
            run.estimate_gib = estimate_gib(phase_path, self.s.vocab) if self.s.device == "cuda" else None
        except Exception as e:  # noqa: BLE001 - a benchmark reports, it does not stop
            run.note = f"estimate failed: {e}"
        if self.left_s() < need_s:
            run.note = f"skipped: {self.left_s():.0f} s of the time budget left, the run needs ~{need_s:.0f} s"
            self.log(f"{section}/{name}: {run.note}")
            return run
        run.log = str(self.out / "logs" / f"{section}-{name}.log")
        extra = [] if keep_checkpoint else ["--checkpoint.no-enable"]
        if cap_gib is not None:
            os.environ[ENV_MEMORY_CAP] = str(cap_gib)
        t = time.monotonic()
        self.log(f"{section}/{name}: running ({config})")
        try:
            with open(run.log, "w") as f:
                run_phase(phase_path, device=self.s.device, max_steps=steps, extra=extra, stdout=f, wandb="off")
            run.status = "ok"
        except Exception as e:  # noqa: BLE001
            text = Path(run.log).read_text(errors="replace")
            oom = "out of memory" in text.lower() or "OutOfMemoryError" in text
            run.status = "oom" if oom else "error"
            run.note = "CUDA out of memory" if oom else f"{type(e).__name__}: {e}; last log lines: " + " | ".join(text.strip().splitlines()[-3:])[-600:]
        finally:
            os.environ.pop(ENV_MEMORY_CAP, None)
            run.wall_s = time.monotonic() - t
        summarize(run, self.s.warmup)
        if self.s.device == "cpu":
            run.mfu_pct = None  # TorchTitan has no CPU peak: its MFU there means nothing
        self.log(f"{section}/{name}: {run.status} in {run.wall_s:.0f} s, tps {run.tps}, mfu {run.mfu_pct}, peak {run.peak_gib} GiB {run.note}")
        return run

    def refscore(self, phase_path: Path) -> bool:
        log = self.out / "logs" / "phase3-refscore.log"
        cmd = [sys.executable, "-m", "datakit_titan.cli", "refscore", str(phase_path), "--device", self.s.device]
        with open(log, "w") as f:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
        self.log(f"phase3: reference log-probs {'written' if rc == 0 else 'FAILED (see ' + str(log) + ')'}")
        return rc == 0


# -- sections ---------------------------------------------------------------------------------------------
def section_seq2048(b: Bench, data: dict) -> None:
    s = b.s
    compiles = (False, True) if s.device == "cuda" else (False,)  # CPU smoke: Inductor on 2 cores is minutes
    for optimizer in ("adamw", "adafactor"):
        for compile_ in compiles:
            name = f"{optimizer}-{'compile' if compile_ else 'eager'}"
            path = lm_phase(b.work / f"{name}.toml", name, data["lm"], b.work / "runs" / name, s, optimizer=optimizer, compile_=compile_)
            b.run("seq2048", name, path, config={"seq_len": s.seq, "rows": s.rows, "optimizer": optimizer, "compile": compile_, "ac": "none"},
                  need_s=120 if compile_ else 60, keep_checkpoint=(optimizer, compile_) == ("adamw", False))


def section_attention(b: Bench, data: dict) -> None:
    s = b.s
    variants = [("no-document-masking", "flex", False)]
    if s.device == "cuda":
        variants += [("varlen", "varlen", True), ("flex_flash", "flex_flash", True)]
    for name, attention, masking in variants:
        path = lm_phase(b.work / f"attn-{name}.toml", name, data["lm"], b.work / "runs" / f"attn-{name}", s, optimizer="adamw",
                        compile_=False, attention=attention, document_masking=masking)
        b.run("attention", name, path, config={"attention": attention, "document_masking": masking, "optimizer": "adamw", "compile": False},
              need_s=60)


def section_phase3(b: Bench, data: dict) -> None:
    s = b.s
    init = b.work / "runs" / "adamw-eager"
    path = prefs_phase(b.work / "phase3.toml", "phase3", data["prefs"], b.work / "runs" / "phase3", init, s)
    if not (init / "checkpoint").exists():
        b.runs.append(Run("phase3", "sft_dpo", {}, note="skipped: no seq2048 adamw-eager checkpoint to start from"))
        return
    if b.left_s() < 150 or not b.refscore(path):
        b.runs.append(Run("phase3", "sft_dpo", {}, status="skipped" if b.left_s() < 150 else "error",
                          note="time budget" if b.left_s() < 150 else "refscore failed"))
        return
    b.run("phase3", "sft_dpo", path, need_s=90,
          config={"seq_len": s.seq_long, "rows": 2, "loss": "sft_dpo", "ac": "full", "optimizer": "adafactor",
                  "param_dtype": "bfloat16" if s.device == "cuda" else "float32"})


def section_fits(b: Bench, data: dict) -> None:
    s = b.s
    init = b.work / "runs" / "adamw-eager"
    for source, mixture, prefs in (("midtrain.toml", data["lm"], False), ("longctx_sft_dpo.toml", data["prefs"], True)):
        for card, gib in CARDS:
            name = f"{source.removesuffix('.toml')}@{card}"
            path = committed_phase(b.work / f"fit-{name}.toml", source, mixture, b.work / "runs" / f"fit-{name}", s.steps,
                                   init_from=init if prefs else None, model=None if s.device == "cuda" else s.model)
            if s.device != "cuda":  # no CUDA memory to cap: prove the rewritten file passes every check `titan run` makes
                b.runs.append(validate_only("fits", name.split("@")[0], path))
                break
            # eager (committed_phase sets compile = false), to save a compilation per attempt: compiled kernels
            # keep fewer activations, so an eager peak that fits is an upper bound (compiled peaks: seq2048 section)
            r = b.run("fits", name, path, cap_gib=gib, need_s=60, steps=4,
                      config={"phase_file": source, "cap_gib": gib, "card": card, "compile": False})
            if r.status != "oom":
                break


def validate_only(section: str, name: str, path: Path) -> Run:
    """Load a phase file and run `titan run`'s checks (mixture, vocab, budget, warmup, init_from) without training."""
    from datakit_titan.kinds import load_any_phase
    from datakit_titan.validate import check_phase

    run = Run(section, name, {"phase_file": str(path)}, note="CPU: checked as `titan run` would, not run (no CUDA memory to cap)")
    try:
        check_phase(load_any_phase(path), device="cpu")
        run.status = "ok"
    except Exception as e:  # noqa: BLE001 - a benchmark reports, it does not stop
        run.status, run.note = "error", f"{type(e).__name__}: {e}"
    return run


SECTIONS = {"seq2048": section_seq2048, "phase3": section_phase3, "fits": section_fits, "attention": section_attention}


# -- report ------------------------------------------------------------------------------------------------
def device_info(device: str) -> dict:
    code = ("import json, torch, torchtitan; d = {'torch': torch.__version__, 'torchtitan': torchtitan.__version__ if hasattr(torchtitan, '__version__') else '?'}\n"
            "if torch.cuda.is_available(): p = torch.cuda.get_device_properties(0); d.update(name=p.name, memory_gib=round(p.total_memory / 2**30, 1))\n"
            "print(json.dumps(d))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    info = json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-300:]}
    info["device"] = device
    return info


def report(b: Bench, info: dict, smoke: bool) -> str:
    fmt = lambda x, f: "-" if x is None else format(x, f)  # noqa: E731
    lines = [f"# GPU benchmark: {b.s.model}{' (--smoke: CPU, tiny preset; figures are CPU, not GPU)' if smoke else ''}", "",
             f"device: {info.get('name', info.get('device'))} ({info.get('memory_gib', '-')} GiB), torch {info.get('torch')}, "
             f"{len([r for r in b.runs if r.status == 'ok'])} runs ok, {time.monotonic() - b.t0:.0f} s in all", "",
             f"anchors: {ANCHORS}; goal: MFU >= 40 % at seq 2048 on H100/H200", "",
             "| section | run | status | tokens/s | MFU % | peak GiB (reserved) | estimate GiB | estimate error | wall s | note |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in b.runs:
        err = r.estimate_error_pct
        lines.append(f"| {r.section} | {r.name} | {r.status} | {fmt(r.tps, ',.0f')} | {fmt(r.mfu_pct, '.1f')} | {fmt(r.peak_gib, '.2f')} | "
                     f"{fmt(r.estimate_gib, '.2f')} | {'-' if err is None else f'{err:+.0f} %'} | {r.wall_s:.0f} | {r.note} |")
    fits = [r for r in b.runs if r.section == "fits" and r.status in ("ok", "oom") and "cap_gib" in r.config]
    if fits:
        lines += ["", "fits (memory capped with torch.cuda.set_per_process_memory_fraction):"]
        for r in fits:
            lines.append(f"- {r.config['phase_file']} in {r.config['cap_gib']} GiB ({r.config['card']}): "
                         f"{'yes' if r.status == 'ok' else 'no'}" + (f", peak {r.peak_gib:.2f} GiB" if r.peak_gib else ""))
    lines += ["", "tokens/s and MFU: TorchTitan's metrics log, median of the steps after the first "
              f"{b.s.warmup}; peak: its max reserved memory; estimate: datakit_titan.estimate.memory_per_gpu for the same config."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny preset, a few steps (CI)")
    ap.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run these sections only")
    ap.add_argument("--budget-s", type=float, default=None, help="start no run that would end past this many seconds (default 420; smoke 900)")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run")
    ap.add_argument("--work", type=Path, default=None, help="data and run folders (default: <out>/work; reused when it exists)")
    args = ap.parse_args()
    s = SMOKE if args.smoke else GPU
    if args.steps:
        s.steps = args.steps
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else REPO / "benchmarks" / "gpu" / "out"
    work = args.work or out / "work"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.chdir(REPO)
    b = Bench(s, out, work, args.budget_s or (900 if args.smoke else 420))
    info = device_info(s.device)
    if s.device == "cuda" and "name" not in info:
        raise SystemExit(f"no CUDA device ({info}); use --smoke on a CPU machine")
    b.log(f"device {info}")
    data = prepare(work, s, b.log)
    b.log("data ready")
    for name in args.only or list(SECTIONS):
        SECTIONS[name](b, data)
    result = {"scale": asdict(s), "device": info, "anchors": ANCHORS, "elapsed_s": time.monotonic() - b.t0,
              "runs": [dict(asdict(r), estimate_error_pct=r.estimate_error_pct) for r in b.runs]}
    (out / "gpu_bench.json").write_text(json.dumps(result, indent=1))
    md = report(b, info, args.smoke)
    (out / "gpu_bench.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
