import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("WANDB_MODE", "offline")


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


@pytest.fixture(scope="session")
def smoke_tokenizer(tmp_path_factory) -> Path:
    """The smoke tokenizer, trained once per test session on the embedded samples (real BPE training)."""
    from datakit.spec import parse_spec
    from datakit.tokenizer.sample import spec_sample
    from datakit.tokenizer.train import train_tokenizer

    import tomllib

    d = tmp_path_factory.mktemp("tok")
    tok = d / "tokenizer.json"
    spec = parse_spec(tomllib.loads(smoke_spec_text(d / "unused", tok)), path="smoke.toml")
    train_tokenizer(spec_sample(spec, spec.tokenizer_train.sample_bytes), tok, spec.mixture.vocab_size)
    return tok


@pytest.fixture
def smoke_spec(tmp_path, smoke_tokenizer) -> Path:
    p = tmp_path / "smoke.toml"
    p.write_text(smoke_spec_text(tmp_path / "mix", smoke_tokenizer))
    return p


def run_cli(*args, cwd=None, timeout=600):
    import subprocess

    return subprocess.run([sys.executable, "-m", "datakit.cli.main", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)
