"""Fixtures for the synth planning tests: a real chat-completions server and a fast copy of the spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from datakit.synth.testing.server import FakeLLMServer

REPO = Path(__file__).resolve().parents[2]
REAL_SPEC = REPO / "synth" / "planning.toml"
FAKE_KEY = "sk-test-DO-NOT-LEAK-7f3a9c"
# Prices litellm's map gives azure/gpt-4o (the azure profile's price_model): $ per 1M tokens in / out.
PRICE_IN, PRICE_OUT = 2.5, 10.0


def _fast_spec(tmp_path: Path, **planning: object) -> Path:
    """synth/planning.toml with test-speed settings (small max_tokens, short timeout and backoff)."""
    settings = {"max_tokens": 400, "timeout_s": 2.0, "backoff_base_s": 0.01, "backoff_max_s": 0.05, "concurrency": 8, **planning}
    text = REAL_SPEC.read_text()
    body = "\n".join(f"{k} = {v!r}".replace("'", '"').replace("True", "true").replace("False", "false") for k, v in settings.items())
    for key in settings:  # drop the committed value of every overridden [planning] key
        text = re.sub(rf"(?m)^{key} = .*$", "", text)
    text = text.replace("[planning]\n", "[planning]\n" + body + "\n", 1)
    path = tmp_path / "planning.toml"
    path.write_text(text)
    return path


@pytest.fixture
def server():
    with FakeLLMServer(seed=1, retry_after_s=0.02, slow_s=3.0) as s:
        yield s


@pytest.fixture
def azure_env(server, monkeypatch):
    """Environment of a user with Azure credentials pointing at the test server."""
    monkeypatch.setenv("AZURE_API_KEY", FAKE_KEY)
    monkeypatch.setenv("AZURE_API_BASE", server.url)
    monkeypatch.setenv("AZURE_API_VERSION", "2024-10-21")
    return server


@pytest.fixture
def fast_spec(tmp_path):
    """fast_spec(**planning_overrides) -> path of a test-speed copy of synth/planning.toml."""
    return lambda **planning: _fast_spec(tmp_path, **planning)


@pytest.fixture
def fake_key():
    return FAKE_KEY


@pytest.fixture
def real_spec():
    """The committed synth/planning.toml."""
    return REAL_SPEC
