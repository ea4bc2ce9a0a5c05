"""The user's story on CPU: a tiny model trains on a mixture and its loss falls; a run stopped at
step k, or killed with SIGKILL mid-way, and resumed logs the same losses as one that never stopped and
reads exactly the same data; mid-train starts from pretrain's weights in its own folder. Each run is a
real `titan run --device cpu` (subprocess)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from titan_fixture import tb_scalars, write_mixture

from datakit_titan.launch import run_phase

pytestmark = pytest.mark.slow

SEQ, ROWS, STEPS = 64, 4, 24


def write_phase(
    folder: Path, name: str, mixture: Path, *, steps: int = STEPS, init_from: str = "", lr: float = 3e-3, optimizer: str = "adamw", stages: str = ""
) -> Path:
    path = folder / f"{name}.toml"
    stages = stages or f"[[stage]]\nseq_len = {SEQ}"
    path.write_text(
        f"""
[phase]
name = "{name}"
mixture = "{mixture}"
output = "{folder / 'outputs' / name}"
model = "tiny"
tokens = {steps * SEQ * ROWS}
init_from = "{init_from}"
seed = 7
{stages}
[batch]
per_gpu = {ROWS}
grad_accum = 1
[optimizer]
name = "{optimizer}"
lr = {lr}
weight_decay = 0.0
warmup_steps = 2
[checkpoint]
interval = 8
keep_last = 3
[metrics]
log_every = 1
wandb = "off"
tensorboard = true
[parallel]
mixed_precision = "float32"
"""
    )
    return path


def losses(output: Path) -> dict[int, float]:
    """Step -> loss from the run's TensorBoard event files (later runs win on a repeated step)."""
    return tb_scalars(output, "loss_metrics/global_avg_loss")


def run(phase: Path, **kw) -> str:
    logfile = phase.with_suffix(".log")
    with open(logfile, "a") as f:
        run_phase(phase, device="cpu", stdout=f, **kw)
    return logfile.read_text()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    mixture = write_mixture(root / "mix")
    phase = write_phase(root, "pretrain", mixture)
    log = run(phase)
    return root, mixture, phase, log


def test_tiny_model_trains_on_cpu_and_loss_falls(pretrained):
    root, _, _, log = pretrained
    out = root / "outputs" / "pretrain"
    ls = losses(out)
    assert sorted(ls) == list(range(1, STEPS + 1)), log[-3000:]
    first, last = sum(ls[s] for s in range(1, 5)) / 4, sum(ls[s] for s in range(STEPS - 3, STEPS + 1)) / 4
    assert last < first - 0.5, ls
    assert (out / "checkpoint" / f"step-{STEPS}").is_dir()


def test_stopped_and_resumed_run_logs_the_same_losses(pretrained):
    root, mixture, _, _ = pretrained
    straight = losses(root / "outputs" / "pretrain")
    phase = write_phase(root, "resumed", mixture)
    run(phase, max_steps=12)
    out = root / "outputs" / "resumed"
    assert max(losses(out)) == 12 and (out / "checkpoint" / "step-12").is_dir()
    log = run(phase)  # picks up the step-12 checkpoint: model, optimizer, schedule, data cursor
    assert "Loading the checkpoint" in log and "step-12" in log
    resumed = losses(out)
    assert sorted(resumed) == list(range(1, STEPS + 1))
    for step in range(1, STEPS + 1):
        assert resumed[step] == straight[step], (step, resumed[step], straight[step])


def test_midtrain_starts_from_pretrain_weights_and_hands_over_between_seq_len_stages(pretrained):
    """init_from = pretrain's output folder (weights only); two seq-len stages, each its own run
    and folder, stage 2 continuing from stage 1's full state."""
    root, mixture, _, _ = pretrained
    pre = losses(root / "outputs" / "pretrain")
    stages = "[[stage]]\nseq_len = 32\ntokens = 256\n[[stage]]\nseq_len = 64"  # 2 steps of 4 x 32, then 2 of 4 x 64
    phase = write_phase(root, "midtrain", mixture, steps=768 // (SEQ * ROWS), init_from=str(root / "outputs" / "pretrain"), lr=1e-3, optimizer="adafactor", stages=stages)
    log = run(phase)
    out = root / "outputs" / "midtrain"
    assert f"pretrain/checkpoint/step-{STEPS}" in log and "stage1-seq32/checkpoint/step-2" in log
    s1, s2 = losses(out / "stage1-seq32"), losses(out / "stage2-seq64")
    assert sorted(s1) == [1, 2] and sorted(s2) == [3, 4], log[-3000:]
    assert s1[1] < pre[1] - 1.0  # starts where pretrain ended, not from a fresh init
    assert (out / "stage2-seq64" / "checkpoint" / "step-4").is_dir()
    assert not (root / "outputs" / "pretrain" / "checkpoint" / "step-4").exists()  # pretrain's folder untouched


def dataloader_state(checkpoint: Path) -> dict:
    """The MixtureDataset cursor a TorchTitan (DCP) checkpoint holds for data-parallel rank 0."""
    import pickle

    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    flat = checkpoint.parent / f"{checkpoint.name}.pt"
    dcp_to_torch_save(checkpoint, flat)
    state = torch.load(flat, weights_only=False)
    flat.unlink()
    loader = pickle.loads(state["dataloader"]["dp_rank_0"])
    return loader["dataset_state"]


def test_kill_9_mid_run_then_rerun_continues_the_loss_curve_and_the_data_exactly(pretrained):
    """SIGKILL (no clean shutdown) between checkpoints; the rerun resumes from the last complete one: every
    step's loss equals the run that never stopped, and the data cursor it saves next (step 16) is that of a
    reader that took exactly 16 x ROWS rows from the start (no document seen twice or skipped)."""
    from datakit_titan.dataset import MixtureDataset

    root, mixture, _, _ = pretrained
    straight = losses(root / "outputs" / "pretrain")
    phase = write_phase(root, "killed", mixture)
    out = root / "outputs" / "killed"
    logfile = phase.with_suffix(".log")
    with open(logfile, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "datakit_titan.cli", "run", str(phase), "--device", "cpu"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    first_ckpt = out / "checkpoint" / "step-8" / ".metadata"  # DCP writes .metadata last
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (first_ckpt.exists() and re.search(r"step:\s*9\b", logfile.read_text())):
        time.sleep(0.02)
    assert proc.poll() is None, logfile.read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the training process, mid-step
    proc.wait()
    assert not (out / "checkpoint" / f"step-{STEPS}").exists()  # killed before the end

    log = run(phase)  # the same command again
    resumed_from = int(re.search(r"Loading the checkpoint.*?step-(\d+)", log, re.S).group(1))
    assert resumed_from == 8  # killed between the step-8 and step-16 checkpoints
    resumed = losses(out)
    assert sorted(resumed) == list(range(1, STEPS + 1))
    for step in range(1, STEPS + 1):
        assert resumed[step] == straight[step], (step, resumed[step], straight[step])

    # step 16 was written by the resumed run (the last checkpoint holds weights only, for the next phase)
    reader = MixtureDataset(mixture, seq_len=SEQ)
    for _ in range(16 * ROWS):  # grad_accum 1: ROWS rows per step
        reader.next_row()
    want = reader.state_dict()
    assert dataloader_state(out / "checkpoint" / "step-16") == want
    assert dataloader_state(root / "outputs" / "pretrain" / "checkpoint" / "step-16") == want
