"""Phase 3 on CPU, the user's story: a phase-2 checkpoint, `titan refscore`, `titan run` of an SFT + DPO
phase with a RoPE change and activation checkpointing; reward accuracy rises above chance on a toy pair
set, and a run stopped at step k and resumed logs the same losses as one that never stopped. Each run
is a real TorchTitan run in a subprocess (`python -m datakit_titan.train`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_prefs_data import SEQ, copy_mixture, prefs_mixture  # noqa: F401  (fixture)
from titan_fixture import tb_scalars as scalars
from titan_fixture import tiny_titan

from datakit.errors import UserError
from datakit.contract import load_manifest

pytestmark = pytest.mark.slow

ROWS, STEPS = 4, 16


def seed_checkpoint(folder: Path, vocab: int, seed: int = 0) -> Path:
    """A 'phase-2' output folder: the tiny model's weights as TorchTitan saves a model-only checkpoint."""
    import torch.distributed.checkpoint as dcp

    model = tiny_titan(vocab, seed)
    step = folder / "checkpoint" / "step-1"
    dcp.save(model.state_dict(), checkpoint_id=str(step))
    return folder


def write_phase(root: Path, name: str, mixture: Path, init_from: Path, *, loss: str = "sft_dpo", steps: int = STEPS) -> Path:
    path = root / f"{name}.toml"
    path.write_text(f"""
[phase]
name = "{name}"
mixture = "{mixture}"
output = "{root / 'outputs' / name}"
model = "tiny"
tokens = {steps * SEQ * ROWS}
init_from = "{init_from}"
loss = "{loss}"
seed = 7

[[stage]]
seq_len = {SEQ}

[batch]
per_gpu = {ROWS}
grad_accum = 1

[optimizer]
name = "adamw"
lr = 2e-3
weight_decay = 0.0
warmup_steps = 2

[prefs]
beta = 0.1
w_sft = 1.0
w_dpo = 0.5

[rope]
theta = 40_000.0

[checkpoint]
interval = 8
keep_last = 3

[metrics]
log_every = 1
wandb = "off"
tensorboard = true

[parallel]
mixed_precision = "float32"
activation_checkpointing = "full"
""")
    return path


def run(phase: Path, **kw) -> str:
    from datakit_titan.launch import run_phase

    log = phase.with_suffix(".log")
    with open(log, "a") as f:
        run_phase(phase, device="cpu", stdout=f, **kw)
    return log.read_text()


@pytest.fixture(scope="module")
def trained(prefs_mixture, tmp_path_factory):  # noqa: F811
    from datakit_titan.prefs.reference import refscore_phase

    root = tmp_path_factory.mktemp("p3")
    mix = copy_mixture(prefs_mixture, root / "mix")
    phase2 = seed_checkpoint(root / "phase2", load_manifest(mix).tokenizer.vocab_size)
    phase = write_phase(root, "p3", mix, phase2)
    with pytest.raises(UserError, match="no reference log-probs"):  # refscore first
        run(phase)
    written = refscore_phase(phase, device="cpu", progress=False)
    assert written["dpo"]["rope"]["theta"] == 40_000.0 and written["dpo"]["checkpoint_step"] == 1
    log = run(phase)
    return root, mix, phase2, phase, log


def test_sft_dpo_trains_and_reward_accuracy_rises_above_chance(trained):
    root, _, _, _, log = trained
    out = root / "outputs" / "p3"
    acc = scalars(out, "prefs/rewards/accuracies")
    margins = scalars(out, "prefs/rewards/margins")
    dpo = scalars(out, "prefs/dpo")
    assert sorted(scalars(out, "loss_metrics/global_avg_loss")) == list(range(1, STEPS + 1)), log[-3000:]
    first = min(dpo)  # the first step with a pair: the policy is still close to the reference (DPO = ln 2)
    assert dpo[first] == pytest.approx(0.6931, abs=0.05) and abs(margins[first]) < 0.1
    late = [acc[s] for s in acc if s > STEPS // 2]
    assert dpo[max(dpo)] < dpo[first] - 0.2, dpo
    assert sum(late) / len(late) > 0.7, acc
    assert sum(margins[s] for s in margins if s > STEPS // 2) > 0
    assert "Loading the checkpoint" in log and "phase2/checkpoint/step-1" in log
    assert (out / "checkpoint" / f"step-{STEPS}").is_dir()
    cost = json.loads((out / "cost.json").read_text())  # phase 3 keeps a cost record like every `titan run`
    assert (cost["phase"], cost["gpu"], cost["n_gpus"], cost["step"]) == ("p3", "cpu", 1, STEPS)
    assert cost["tokens"] == STEPS * ROWS * SEQ and cost["usd"] == 0


def test_stopped_and_resumed_run_logs_the_same_losses(trained):
    """A run stopped after step 8 = the straight run's folder as it was after step 8 (its full step-8
    checkpoint: weights, optimizer, schedule, data cursor); resuming it logs steps 9..16 exactly."""
    import shutil

    root, _, _, phase, _ = trained
    out = root / "outputs" / "p3"
    straight = scalars(out, "loss_metrics/global_avg_loss")
    shutil.copytree(out, out.with_name("p3-stopped"))
    stopped = out.with_name("p3-stopped")
    shutil.rmtree(stopped / "checkpoint" / f"step-{STEPS}")
    shutil.rmtree(stopped / "tb")
    resumed_phase = phase.with_name("p3-stopped.toml")
    resumed_phase.write_text(phase.read_text().replace(f'output = "{out}"', f'output = "{stopped}"'))
    log = run(resumed_phase)
    assert "Loading the checkpoint" in log and "p3-stopped/checkpoint/step-8" in log
    resumed = scalars(stopped, "loss_metrics/global_avg_loss")
    assert sorted(resumed) == list(range(9, STEPS + 1))
    for step in resumed:
        assert resumed[step] == straight[step], (step, resumed[step], straight[step])


def test_reference_from_another_checkpoint_is_refused_before_training(trained, tmp_path):
    _, mix, _, _, _ = trained
    other = seed_checkpoint(tmp_path / "other", load_manifest(mix).tokenizer.vocab_size, seed=1)
    phase = write_phase(tmp_path, "p3-other", mix, other)
    with pytest.raises(UserError, match="another checkpoint"):
        run(phase)


def test_cli_prints_a_user_error_without_traceback(prefs_mixture, tmp_path):  # noqa: F811
    """`titan run` on a phase-3 file without reference log-probs: exit 2, one line that says what to run."""
    import subprocess
    import sys

    phase2 = seed_checkpoint(tmp_path / "phase2", load_manifest(prefs_mixture).tokenizer.vocab_size)
    phase = write_phase(tmp_path, "p3-cli", prefs_mixture, phase2)
    r = subprocess.run([sys.executable, "-m", "datakit_titan.cli", "run", str(phase), "--device", "cpu"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert "no reference log-probs for DPO source 'dpo'" in r.stderr and f"titan refscore {phase}" in r.stderr


def test_two_processes_count_the_global_tokens_in_cost_json(trained, monkeypatch):
    """Two data-parallel ranks (torchrun, gloo on CPU): cost.json counts both ranks' tokens and GPU-hours,
    priced as `titan launch` passes it (the task's env)."""
    root, mix, phase2, _, _ = trained
    monkeypatch.setenv("DATAKIT_TITAN_USD_PER_GPU_HOUR", "2.0")
    monkeypatch.setenv("DATAKIT_TITAN_PRICE_SOURCE", "SkyPilot catalog (test)")
    phase = write_phase(root, "p3-np2", mix, phase2, steps=6)  # 6 x ROWS x SEQ tokens = 3 steps of 2 ranks
    log = phase.with_suffix(".log")
    with open(log, "a") as f:
        from datakit_titan.launch import run_phase

        run_phase(phase, device="cpu", nproc=2, max_steps=3, stdout=f)
    cost = json.loads((root / "outputs" / "p3-np2" / "cost.json").read_text())
    assert (cost["n_gpus"], cost["step"]) == (2, 3), log.read_text()[-3000:]
    assert cost["tokens"] == cost["tokens_processed"] == 3 * 2 * ROWS * SEQ  # both ranks, not rank 0's share
    assert cost["gpu_hours"] == pytest.approx(2 * cost["wall_hours"])
    assert cost["usd"] == pytest.approx(cost["gpu_hours"] * 2.0) and cost["price_source"] == "SkyPilot catalog (test)"
