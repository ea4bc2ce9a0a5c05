"""Fixtures of the top-level tests: the smoke tokenizer and builds (the offline environment: ../conftest.py)."""

from pathlib import Path

import pytest

from smoke_helpers import SMALL, run_cli, smoke_spec_text


@pytest.fixture(scope="session")
def smoke_tokenizer(tmp_path_factory) -> Path:
    """The smoke tokenizer, trained once per test session on the embedded samples (real BPE training)."""
    from datakit.spec import parse_spec
    from datakit.mix.tokenizer_sample import spec_sample
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



@pytest.fixture(scope="session")
def small(tmp_path_factory, smoke_tokenizer) -> Path:
    """A folder with small.toml (SMALL) and its finished build in mix/ (built once per session)."""
    d = tmp_path_factory.mktemp("small")
    (d / "small.toml").write_text(SMALL.format(tokenizer=smoke_tokenizer))
    r = run_cli("mix", "build", "small.toml", cwd=d)
    assert r.returncode == 0, r.stderr
    return d
