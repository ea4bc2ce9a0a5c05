"""Fixtures shared by every test tree (tests/ and engines/titan/tests/): the offline environment, and the
console scripts run in this process.

Folder-specific fixtures stay beside their tests: tests/conftest.py (smoke tokenizer and builds),
tests/synth/conftest.py (the real chat-completions server), tests/curate/conftest.py,
engines/titan/tests/conftest.py (a small built mixture); plain helper modules sit next to them
(smoke_helpers.py, titan_fixture.py, ...), since `conftest` names clash across test folders.
"""

from __future__ import annotations

import os
import sys

import pytest

# No code may load from a hub at test time; litellm reads its bundled price map; wandb writes offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("WANDB_MODE", "offline")


class Cli:
    """`datakit ...` / `titan ...` through their real entry points (the console scripts' main), in this
    process: returns (exit code, stdout, stderr)."""

    def __init__(self, monkeypatch, capsys):
        self.monkeypatch, self.capsys = monkeypatch, capsys

    def datakit(self, *args: str) -> tuple[int, str, str]:
        from datakit.cli.main import main

        return self._run(main, "datakit", args)

    def titan(self, *args: str) -> tuple[int, str, str]:
        from datakit_titan.cli import main

        return self._run(main, "titan", args)

    def _run(self, main, prog: str, args) -> tuple[int, str, str]:
        self.monkeypatch.setattr(sys, "argv", [prog, *map(str, args)])
        with pytest.raises(SystemExit) as e:
            main()
            sys.exit(0)
        out = self.capsys.readouterr()
        return e.value.code, out.out, out.err


@pytest.fixture
def cli(monkeypatch, capsys) -> Cli:
    return Cli(monkeypatch, capsys)
