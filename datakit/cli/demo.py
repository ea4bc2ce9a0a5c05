"""`datakit demo`: the README's main job on the embedded samples, start to finish, offline.

1. procedural planning records (free, verified)   2. tokenizer   3. mixture build (+ plan)
4. token report                                   5. a few real TorchTitan training steps on CPU
6. phase 3: SFT + DPO sets from the procedural records, a long-context mixture, reference log-probs,
   and a few SFT + DPO training steps
7. export: the phase-3 model as GGUF (f16 + llama.cpp's Q8_0), its quant report, and text generated
   by llama.cpp's C++ inference
8. eval: both phases on the build's held-out slice, lm-eval benchmarks on the embedded task samples,
   verified planning accuracy and the long-context probes, then the eval table across phases
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import typer

SMOKE_SPEC = Path("mixtures/smoke.toml")
SMOKE_PHASE = Path("engines/titan/phases/smoke.toml")
PHASE3_SPEC = Path("mixtures/smoke_sft_dpo.toml")
PHASE3_PHASE = Path("engines/titan/phases/smoke_sft_dpo.toml")
PHASE3_RECORDS = Path("data/synth/procedural-easy")
EXPORT_DIR = Path("exports/smoke_sft_dpo-gguf")
DEMO_PROMPT = ("<problem>A software team must deliver 3 tasks. T1: write the spec, 2 days, prerequisites: none. T2: build it, "
               "3 days, prerequisites: T1. T3: test it, 1 day, prerequisites: T2. Find the makespan.</problem>")


def _stale_demo_output(spec) -> None:
    """The demo owns its outputs: a build of an older version of the demo spec is replaced, not refused."""
    manifest = spec.output / "manifest.json"
    if manifest.exists():
        import json

        if json.loads(manifest.read_text()).get("spec_sha256") != spec.sha256:
            shutil.rmtree(spec.output)


def _step(title: str) -> None:
    typer.secho(f"\n== {title}", bold=True)


def run_demo(workers: int = 2, train: bool = True) -> None:
    from datakit.accounting.report import render_report
    from datakit.mix.build import build_mixture
    from datakit.mix.pipeline import ExecutorOptions
    from datakit.mix.plan import format_plan
    from datakit.spec import load_spec
    from datakit.spec.sizes import human

    spec = load_spec(SMOKE_SPEC)
    synth = [s for s in spec.source if s.scheme == "synth"]
    if synth:
        _step("1/9 procedural planning records (verified by code, no API key)")
        from datakit.synth.procedural import generate

        for s in synth:
            r = generate(Path(s.location), count=300, seed=spec.mixture.seed)
            per = ", ".join(f"{k} {v}" for k, v in r["per_domain"].items())
            typer.echo(f"{s.location}: {r['records_written']} new verified records ({r['records_skipped_existing']} already there): {per}")
    _step("2/9 tokenizer")
    if Path(spec.mixture.tokenizer).exists():
        typer.echo(f"{spec.mixture.tokenizer} exists: reusing it")
    else:
        from datakit.mix.tokenizer_sample import spec_sample
        from datakit.tokenizer.train import train_tokenizer

        stats: dict = {}
        r = train_tokenizer(spec_sample(spec, spec.tokenizer_train.sample_bytes, stats), spec.mixture.tokenizer, spec.mixture.vocab_size)
        typer.echo(f"wrote {r['path']} (vocab {r['vocab_size']:,}) from {human(sum(stats.values()), 'B')} of text")
    _step(f"3/9 datakit mix build {SMOKE_SPEC} --workers {workers}")
    _stale_demo_output(spec)
    m = build_mixture(spec, ExecutorOptions(workers=workers))
    from datakit.mix.plan import make_plan

    typer.echo(format_plan(make_plan(spec, {s.name: (s.docs_available, s.tokens_available, "counted") for s in m.sources})))
    _step(f"4/9 datakit tokens report {spec.output}")
    from datakit.contract import verify_mixture

    typer.echo(verify_mixture(spec.output).raise_if_bad().summary())
    typer.echo(render_report(spec.output))
    _step(f"5/9 titan run {SMOKE_PHASE} --device cpu")
    titan = shutil.which("titan") or str(Path(sys.executable).parent / "titan")
    if not train:
        typer.echo("skipped (--no-train)")
    elif not Path(titan).exists():
        typer.echo("the titan engine is not installed: `pip install -e engines/titan` (make demo does it)")
        train = False
    else:
        subprocess.run([titan, "run", str(SMOKE_PHASE), "--device", "cpu"], check=True)
    _step("6/9 phase 3: SFT + DPO with long context")
    phase3_data(workers)
    if train:
        subprocess.run([titan, "refscore", str(PHASE3_PHASE), "--device", "cpu"], check=True)
        subprocess.run([titan, "run", str(PHASE3_PHASE), "--device", "cpu", "--steps", "10"], check=True)
    _step(f"7/9 titan export + quant-report + generate (llama.cpp) -> {EXPORT_DIR}")
    if train:
        export_and_generate(titan)
    else:
        typer.echo("skipped (--no-train)")
    _step("8/9 titan eval (each phase) + titan eval-report outputs/")
    if train:
        evaluate_phases(titan)
    else:
        typer.echo("skipped (--no-train)")
    _step("9/9 datakit cost data outputs")
    from datakit.cost.report import cost_report, format_report

    typer.echo(format_report(cost_report([p for p in (Path("data"), Path("outputs")) if p.exists()])))
    typer.secho("\ndemo done.", bold=True)


def export_and_generate(titan: str) -> None:
    """The phase-3 model as GGUF files, scored and run in llama.cpp (the tiny preset's 64-wide rows are too
    narrow for k-quants, so the demo stops at Q8_0; docs/inference.md has the full set)."""
    subprocess.run([titan, "export", "outputs/smoke_sft_dpo", "--to", "gguf", "--quant", "f16,q8_0", "--out", str(EXPORT_DIR), "--force"],
                   check=True)
    subprocess.run([titan, "quant-report", str(EXPORT_DIR), "--data", "data/mixtures/smoke", "--tokens", "4096"], check=True)
    subprocess.run([titan, "generate", str(EXPORT_DIR / "model-q8_0.gguf"), DEMO_PROMPT, "--max-tokens", "64"], check=True)


def evaluate_phases(titan: str) -> None:
    """Both phases of the demo on small eval settings (CPU minutes), then the table across phases. The tiny
    model scores near chance on the benchmarks: the report says so; the numbers prove the plumbing."""
    common = ["--limit", "10", "--batch", "10", "--wandb", "off"]
    subprocess.run([titan, "eval", "outputs/smoke", "--suite", "core", *common], check=True)
    subprocess.run([titan, "eval", "outputs/smoke_sft_dpo", "--suite", "core,planning,longctx", "--compare", "outputs/smoke",
                    "--per-cell", "2", "--difficulties", "easy", "--samples", "2", "--max-new-tokens", "128",
                    "--longctx-lengths", "256,512,1024", *common], check=True)
    subprocess.run([titan, "eval-report", "outputs/"], check=True)


def phase3_data(workers: int) -> None:
    """Easy procedural records -> verified SFT set + proven DPO pairs -> long-context mixture."""
    from datakit.accounting.report import example_rows
    from datakit.mix.build import build_mixture
    from datakit.mix.pipeline import ExecutorOptions
    from datakit.spec import load_spec
    from datakit.synth.dpo import make_dpo
    from datakit.synth.procedural import generate
    from datakit.synth.sft import make_sft

    spec = load_spec(PHASE3_SPEC)
    generate(PHASE3_RECORDS, count=200, seed=spec.mixture.seed, difficulty="easy", progress=False)
    sft = make_sft(PHASE3_RECORDS, Path(spec.get("planning-sft").location), progress=False)
    dpo = make_dpo(PHASE3_RECORDS, Path(spec.get("planning-dpo").location), progress=False)
    typer.echo(f"SFT: {sft['records_written']} new verified records; DPO: {dpo['pairs_written']} new pairs whose rejected side "
               f"fails the checker ({dpo['dropped']} candidate flaws dropped: {dpo['dropped_by_reason']})")
    _stale_demo_output(spec)
    m = build_mixture(spec, ExecutorOptions(workers=workers))
    for r in example_rows(spec.output):
        typer.echo(f"  {r['source']:<14} {r['role'] or 'sft':<9} {r['examples']:>5} examples: context {r['context']:,} + prompt "
                   f"{r['prompt']:,} + completion {r['completion']:,} tokens")
    typer.echo(f"built {spec.output}: {m.total_tokens:,} tokens at seq_len {m.seq_len}")


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        workers: int = typer.Option(2, "--workers", help="datatrove workers for the build."),
        train: bool = typer.Option(True, "--train/--no-train", help="Run the CPU training steps at the end."),
    ):
        """Run the whole job on the embedded samples: synthetic records, tokenizer, mixture build, report, CPU training.

        Run it from the repository root (it reads mixtures/smoke.toml and writes data/ and tokenizers/).
        """
        if not SMOKE_SPEC.exists():
            from datakit.errors import UserError

            raise UserError("mixtures/smoke.toml not found", fix="run `datakit demo` from the repository root")
        run_demo(workers, train)
