"""`titan estimate`'s numbers against TorchTitan's own model and FLOP count."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from datakit_titan.estimate import GPUS, flops_per_token, memory_per_gpu, param_counts, plan_claim
from datakit_titan.presets import PRESETS

PHASES = Path(__file__).parent.parent / "phases"


def test_param_count_and_flops_match_torchtitans_built_model():
    from datakit_titan.spec import model_spec

    p = PRESETS["plan-1.6b"]
    spec = model_spec("plan-1.6b", 65_536)
    with torch.device("meta"):
        model = spec.model.build()
    n, flops = spec.model.get_nparams_and_flops(model, 2048)
    assert n == param_counts(p, 65_536)["total"] == 1_593_935_872  # tied embeddings
    assert flops == flops_per_token(p, 65_536, 2048)["total"]
    assert model.tok_embeddings.weight is model.lm_head.weight
    untied = param_counts(type(p)(**{**p.__dict__, "tie_embeddings": False}), 65_536)["total"]
    assert untied - n == 65_536 * 2048


def test_memory_adafactor_needs_far_less_state_than_adamw():
    p = PRESETS["plan-1.6b"]
    kw = dict(seq_len=2048, micro_batch=2, param_dtype="bfloat16")
    adamw, ada = memory_per_gpu(p, 65_536, optimizer="adamw", **kw), memory_per_gpu(p, 65_536, optimizer="adafactor", **kw)
    assert adamw["optimizer"] == 2 * 2 * 1_593_935_872 and ada["optimizer"] < adamw["optimizer"] / 500
    full = memory_per_gpu(p, 65_536, optimizer="adafactor", activation_checkpointing="full", **kw)
    assert full["activations"] < ada["activations"] / 5
    assert full["total"] < GPUS["rtx5080"].memory_gib * 1024**3 < ada["total"]


def test_plan_figure_does_not_add_up():
    text = plan_claim()
    assert "69,120,000 tokens, not 50,000,000,000" in text
    assert "7.9 years" in text


def test_cli_estimate_prints_the_catalogue_and_the_plan_check():
    r = subprocess.run(
        [sys.executable, "-m", "datakit_titan.cli", "estimate", str(PHASES / "pretrain.toml"), "--gpu", "rtx5080", "--price-per-hour", "0"],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "1,593,935,872" in r.stdout and "tied" in r.stdout and "112.6 TFLOPS" in r.stdout
    assert "adafactor" in r.stdout and "plan: 50.00B tokens" in r.stdout


def test_mfu_peak_comes_from_the_catalogue_for_gpus_torchtitan_does_not_know():
    from datakit_titan.estimate import gpu_for_device_name

    assert gpu_for_device_name("NVIDIA GeForce RTX 5080").peak_bf16_tflops == 112.6
    assert gpu_for_device_name("NVIDIA GeForce RTX 5090").peak_bf16_tflops == 209.5
    assert gpu_for_device_name("NVIDIA H100 80GB HBM3").name == "H100 SXM"
    assert gpu_for_device_name("NVIDIA A100-SXM4-80GB").peak_bf16_tflops == 312.0
    assert gpu_for_device_name("cpu") is None
