"""`datakit demo`: the README's main job on the embedded samples, start to finish, offline.

1. procedural planning records (free, verified)   2. tokenizer   3. mixture build (+ plan)
4. token report                                   5. a few real TorchTitan training steps on CPU
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import typer

SMOKE_SPEC = Path("mixtures/smoke.toml")
SMOKE_PHASE = Path("engines/titan/phases/smoke.toml")


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
        _step("1/5 procedural planning records (verified by code, no API key)")
        from datakit.synth.procedural import generate

        for s in synth:
            r = generate(Path(s.location), count=300, seed=spec.mixture.seed)
            per = ", ".join(f"{k} {v}" for k, v in r["per_domain"].items())
            typer.echo(f"{s.location}: {r['records_written']} new verified records ({r['records_skipped_existing']} already there): {per}")
    _step("2/5 tokenizer")
    if Path(spec.mixture.tokenizer).exists():
        typer.echo(f"{spec.mixture.tokenizer} exists: reusing it")
    else:
        from datakit.tokenizer.sample import spec_sample
        from datakit.tokenizer.train import train_tokenizer

        stats: dict = {}
        r = train_tokenizer(spec_sample(spec, spec.tokenizer_train.sample_bytes, stats), spec.mixture.tokenizer, spec.mixture.vocab_size)
        typer.echo(f"wrote {r['path']} (vocab {r['vocab_size']:,}) from {human(sum(stats.values()), 'B')} of text")
    _step(f"3/5 datakit mix build {SMOKE_SPEC} --workers {workers}")
    m = build_mixture(spec, ExecutorOptions(workers=workers))
    from datakit.mix.plan import make_plan

    typer.echo(format_plan(make_plan(spec, {s.name: (s.docs_available, s.tokens_available, "counted") for s in m.sources})))
    _step(f"4/5 datakit tokens report {spec.output}")
    typer.echo(render_report(spec.output))
    _step(f"5/5 titan run {SMOKE_PHASE} --device cpu")
    titan = shutil.which("titan") or str(Path(sys.executable).parent / "titan")
    if not train:
        typer.echo("skipped (--no-train)")
    elif not Path(titan).exists():
        typer.echo("the titan engine is not installed: `pip install -e engines/titan` (make demo does it)")
    else:
        subprocess.run([titan, "run", str(SMOKE_PHASE), "--device", "cpu"], check=True)
    typer.secho("\ndemo done.", bold=True)


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
