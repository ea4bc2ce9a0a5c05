"""Shared by the top-level tests (a plain module: `conftest` names clash across test folders)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROCEDURAL = {}


def procedural_records() -> Path:
    """Verified procedural planning records (the smoke mixture's synth:// source), generated once per session."""
    if "dir" not in PROCEDURAL:
        import tempfile

        from datakit.synth.procedural import generate

        d = Path(tempfile.mkdtemp(prefix="procedural-"))
        generate(d, count=200, seed=1234, progress=False)
        PROCEDURAL["dir"] = d
    return PROCEDURAL["dir"]


def smoke_spec_text(out: Path, tokenizer: Path, extra_sources: str = "") -> str:
    """mixtures/smoke.toml with output, tokenizer and the procedural records moved under test folders."""
    text = (ROOT / "mixtures" / "smoke.toml").read_text()
    text = text.replace('uri = "synth://data/synth/procedural"', f'uri = "synth://{procedural_records()}"')
    text = text.replace('output = "data/mixtures/smoke"', f'output = "{out}"')
    text = text.replace('tokenizer = "tokenizers/smoke-4k/tokenizer.json"', f'tokenizer = "{tokenizer}"')
    return text + extra_sources


def run_cli(*args, cwd=None, timeout=600):
    import subprocess

    return subprocess.run([sys.executable, "-m", "datakit.cli.main", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


# A small real build (two embedded sources, several shards each), spec and output side by side: with a
# relative output, a copy of the folder is the same spec's build (tests/conftest.py: the `small` fixture).
SMALL = """
[mixture]
name = "small"
seq_len = 256
tokenizer = "{tokenizer}"
vocab_size = 4096
output = "mix"                 # relative: a copy of the folder is the same spec's build
shard_tokens = "5K"

[[source]]
name = "gsm8k"
uri = "samples://openai__gsm8k/main/train-*.parquet"
format = "gsm8k"
tokens = "all"

[[source]]
name = "arc"
uri = "samples://allenai__ai2_arc/ARC-Challenge/train-*.parquet"
format = "arc"
tokens = "all"
"""
