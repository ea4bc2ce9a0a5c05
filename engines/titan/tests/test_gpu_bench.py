"""benchmarks/gpu/run.sh --smoke: the GPU benchmark's every section on CPU with the tiny preset, so the
script a GPU session runs never rots; and its reading of TorchTitan's metrics lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "benchmarks" / "gpu"))

import bench  # noqa: E402


def test_torchtitan_metrics_lines_are_read():
    gpu = ("[titan] 2026-01-01 - root - INFO - \x1b[31mstep: 12  \x1b[32mloss:  3.20000  \x1b[38;2;180;60;0mgrad_norm:  1.0000  "
           "\x1b[38;2;54;234;195mmemory: 41.23GiB(51.53%)  \x1b[34mtps: 35,123  \x1b[36mtflops: 350.12  \x1b[35mmfu: 35.41%\x1b[39m")
    cpu = "step:  1  loss:  8.8  grad_norm:  1.1  memory: -0.00GiB(-100.00%)  tps: 282  tflops: 0.00  mfu: 0.00%"
    assert bench.parse_steps(gpu) == [{"step": 12, "memory_gib": 41.23, "tps": 35123.0, "mfu_pct": 35.41}]
    assert bench.parse_steps(cpu) == [{"step": 1, "memory_gib": None, "tps": 282.0, "mfu_pct": None}]
    run = bench.Run("s", "r", {}, peak_gib=40.0, estimate_gib=30.0)
    assert run.estimate_error_pct == pytest.approx(-25.0)


@pytest.mark.slow
def test_smoke_runs_every_section_through_titan_run(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable)
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu" / "run.sh"), "--smoke"], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads((tmp_path / "gpu_bench.json").read_text())
    runs = {(r["section"], r["name"]): r for r in result["runs"]}
    for key in [("seq2048", "adamw-eager"), ("seq2048", "adafactor-eager"), ("attention", "no-document-masking"), ("phase3", "sft_dpo")]:
        assert runs[key]["status"] == "ok", runs[key]["note"]
        assert runs[key]["tps"] > 0 and len(runs[key]["steps"]) == result["scale"]["steps"]
    for name in ("midtrain", "longctx_sft_dpo"):  # the committed phase files, rewritten as on a GPU, pass titan run's checks
        assert runs[("fits", name)]["status"] == "ok", runs[("fits", name)]["note"]
    md = (tmp_path / "gpu_bench.md").read_text()
    assert "| seq2048 | adamw-eager | ok |" in md and "TinyLlama" in md and "figures are CPU, not GPU" in md


def test_fit_runs_use_the_committed_phase_files_pointed_at_the_benchmark_data(tmp_path):
    mid = bench.committed_phase(tmp_path / "mid.toml", "midtrain.toml", tmp_path / "mix", tmp_path / "out", 4)
    data = tomllib.loads(mid.read_text())
    assert data["phase"]["mixture"] == str(tmp_path / "mix") and data["phase"]["init_from"] == "" and data["parallel"]["gpu"] == ""
    assert data["batch"]["per_gpu"] == 2 and data["optimizer"]["name"] == "adafactor"  # the plan's batch and optimizer, as committed
    assert data["parallel"]["compile"] is False and "mixture_spec" not in data["phase"]
    longctx = bench.committed_phase(tmp_path / "long.toml", "longctx_sft_dpo.toml", tmp_path / "prefs", tmp_path / "out3", 4,
                                    init_from=tmp_path / "init")
    assert tomllib.loads(longctx.read_text())["phase"]["init_from"] == str(tmp_path / "init")
    # titan estimate's figures: the rewrite keeps every memory-relevant setting of the committed files
    phases = REPO / "engines" / "titan" / "phases"
    assert bench.estimate_gib(mid, 65_536) == pytest.approx(bench.estimate_gib(phases / "midtrain.toml", 65_536))
    assert bench.estimate_gib(longctx, 65_536) == pytest.approx(bench.estimate_gib(phases / "longctx_sft_dpo.toml", 65_536))
    assert bench.estimate_gib(mid, 65_536) == pytest.approx(9.1, abs=0.1)  # Adafactor, bf16, full AC, 2 x 2048 (docs/deviations.md)
    assert bench.estimate_gib(longctx, 65_536) == pytest.approx(36.5, abs=0.1)  # AdamW, fp32 master weights, full AC, 2 x 8192
