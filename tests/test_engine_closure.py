"""The engine installs without datakit's build / synth stack: its dependency closure, computed from the
installed packages' own metadata, holds no litellm, datatrove, spacy or duckdb, and the engine's data path
runs in an interpreter that sees only that closure (every other installed package is absent)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"litellm", "datatrove", "spacy", "duckdb", "polars", "s3fs", "datasketch"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requires(pyproject: Path) -> list[str]:
    return tomllib.loads(pyproject.read_text())["project"]["dependencies"]


def engine_closure() -> dict[str, str]:
    """normalized name -> installed version, for every distribution `pip install engines/titan` pulls in
    (datakit itself: its core dependencies, from pyproject.toml; the rest from each installed package's metadata)."""
    todo = [r for r in _requires(ROOT / "engines/titan/pyproject.toml")]
    seen: dict[str, str] = {}
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = _norm(req.name)
        if name in seen:
            continue
        if name == "datakit":
            seen[name] = "core"
            todo += _requires(ROOT / "pyproject.toml")
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            seen[name] = "not installed"
            continue
        seen[name] = dist.version
        todo += dist.requires or []
    return seen


def test_the_engines_dependency_closure_has_no_build_or_synth_stack():
    closure = engine_closure()
    assert {"torch", "torchtitan", "numpy", "pydantic", "datakit"} <= set(closure)
    assert not HEAVY & set(closure), sorted(HEAVY & set(closure))


def _farm(tmp: Path, closure: dict[str, str]) -> Path:
    """A folder of links to exactly the closure's installed top-level modules (and their metadata)."""
    farm = tmp / "site"
    farm.mkdir()
    for name, version in closure.items():
        if name == "datakit" or version == "not installed":
            continue
        dist = metadata.distribution(name)
        base = Path(dist.locate_file(""))
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"__pycache__"}:
            src, dst = base / top, farm / top
            if src.exists() and not dst.exists():
                dst.symlink_to(src)
    return farm


def test_the_engines_data_path_runs_with_only_its_closure_installed(tmp_path):
    farm = _farm(tmp_path, engine_closure())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(farm), str(ROOT), str(ROOT / "engines/titan")])}
    script = f"""
import importlib.util, sys
for m in {sorted(HEAVY)!r}:
    assert importlib.util.find_spec(m) is None, m
from datakit.contract.writer import write_mixture
from datakit_titan.dataset import MixtureDataset
import datakit_titan.config_registry  # TorchTitan's trainer, our components
write_mixture({str(tmp_path / 'mix')!r}, {{"s": [[1, 5, 6, 7, 2]] * 20}}, vocab_size=64, seq_len=8)
ds = MixtureDataset({str(tmp_path / 'mix')!r}, seq_len=8, verify=False)
x, y = next(iter(ds))
assert x["input"].tolist()[:4] == [1, 5, 6, 7] and y.tolist()[:4] == [5, 6, 7, 2]
print("engine data path ok without", {sorted(HEAVY)!r})
"""
    r = subprocess.run([sys.executable, "-S", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "engine data path ok" in r.stdout
    # a datakit command whose extra is missing says which one to install (exit 2, no traceback)
    r = subprocess.run([sys.executable, "-S", "-m", "datakit.cli.main", "mix", "build", "nope.toml"], env=env, capture_output=True,
                       text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 2 and "pip install 'datakit[build]'" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
