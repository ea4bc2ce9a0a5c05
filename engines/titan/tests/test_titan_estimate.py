"""`titan estimate`'s numbers against TorchTitan's own model and FLOP count."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from datakit_titan.estimate import GIB, GPUS, flops_per_token, memory_per_gpu, param_counts
from datakit_titan.plan_claim import plan_claim_report
from datakit_titan.phase import load_phase
from datakit_titan.prefs.phase import load_prefs_phase
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


def test_multi_gpu_bf16_memory_counts_the_gathered_parameters():
    """2 x RTX 5090, pure bf16, reshard_after_forward = never: each GPU holds its half of the bf16 weights
    plus every layer gathered in bf16 for compute (FSDP2 frees them only after each layer's backward)."""
    p = PRESETS["plan-1.6b"]
    n, per_layer = 1_593_935_872, 60_821_504
    m = memory_per_gpu(p, 65_536, seq_len=2048, micro_batch=2, optimizer="adafactor", param_dtype="bfloat16",
                       activation_checkpointing="full", n_gpus=2, reshard_after_forward="never")
    shard = n * 2 / 2  # 1.48 GiB
    gathered = 2 * (24 * per_layer + 65_536 * 2048)  # all 24 layers + the tied embedding, bf16: 2.97 GiB
    assert m["weights"] == shard and m["compute_copy"] == gathered
    assert round((m["weights"] + m["compute_copy"]) / GIB, 2) == 4.45
    one = memory_per_gpu(p, 65_536, seq_len=2048, micro_batch=2, optimizer="adafactor", param_dtype="bfloat16", n_gpus=1)
    assert one["compute_copy"] == 0 and one["weights"] == n * 2  # one GPU: no FSDP, the bf16 weights themselves
    default = memory_per_gpu(p, 65_536, seq_len=2048, micro_batch=2, optimizer="adafactor", param_dtype="bfloat16",
                             n_gpus=2, reshard_after_forward="default")
    assert default["compute_copy"] == 2 * (2 * per_layer + 65_536 * 2048)  # two layers in flight


def test_the_plans_own_figures_are_checked_per_phase():
    pre = plan_claim_report(load_phase(PHASES / "pretrain.toml"))
    assert "69,120,000 tokens, not 50,000,000,000" in pre and "7.9 years" in pre
    p3 = plan_claim_report(load_prefs_phase(PHASES / "longctx_sft_dpo.toml"))
    assert "17.4 h x 3,600 s x 400 tokens/s = 25,056,000 tokens, not 25,000,000,000" in p3
    assert "62,500,000 s = 723.4 days" in p3
    assert "17.4 h x 1 GPU x $0.5/GPU-hour = $8.70, not $9.80" in p3 and "$55" in p3
    assert "A100 80GB" in p3 and "seq 8192" in p3
    mid = plan_claim_report(load_phase(PHASES / "midtrain.toml"))
    assert "states no time or cost figure" in mid


def test_cli_estimate_prints_the_catalogue_and_the_plan_check():
    r = subprocess.run(
        [sys.executable, "-m", "datakit_titan.cli", "estimate", str(PHASES / "pretrain.toml"), "--gpu", "rtx5080", "--price-per-hour", "0"],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "1,593,935,872" in r.stdout and "tied" in r.stdout and "112.6 TFLOPS" in r.stdout
    assert "adafactor" in r.stdout and "plan: 50.00B tokens" in r.stdout


def test_cli_estimate_defaults_to_the_plans_phase3_hardware_and_budget():
    r = subprocess.run([sys.executable, "-m", "datakit_titan.cli", "estimate", str(PHASES / "longctx_sft_dpo.toml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert "25,000,000,000 tokens on 1 x A100 80GB" in first  # tokens = "mixture": the spec's 25B until built
    assert "total_tokens of mixtures/longctx_sft_dpo.toml" in r.stdout
    mine = next(line for line in r.stdout.splitlines() if "<- this phase" in line)
    assert mine.split()[:3] == ["adamw", "fp32", "full"] and " yes " in mine
    assert "at $0.5/GPU-hour" in r.stdout  # the plan's own rate for its own GPU


def test_mfu_peak_comes_from_the_catalogue_for_gpus_torchtitan_does_not_know():
    from datakit_titan.estimate import gpu_for_device_name

    assert gpu_for_device_name("NVIDIA GeForce RTX 5080").peak_bf16_tflops == 112.6
    assert gpu_for_device_name("NVIDIA GeForce RTX 5090").peak_bf16_tflops == 209.5
    assert gpu_for_device_name("NVIDIA H100 80GB HBM3").name == "H100 SXM"
    assert gpu_for_device_name("NVIDIA A100-SXM4-80GB").peak_bf16_tflops == 312.0
    assert gpu_for_device_name("cpu") is None
