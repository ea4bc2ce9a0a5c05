"""<run>/cost.json: written as a real `titan run --device cpu` goes, complete after a kill -9, added to by
the resumed run (a second segment), and the same figures in TensorBoard. The GPU-only fields (MFU, the
estimate, estimate vs actual) are checked on the cost record itself with a clock we step: no GPU here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_titan_train import ROWS, SEQ, STEPS, losses, write_phase
from titan_fixture import write_mixture


@pytest.mark.slow
def test_cost_json_survives_kill_9_and_the_resumed_run_adds_a_segment(tmp_path):
    mixture = write_mixture(tmp_path / "mix")
    phase = write_phase(tmp_path, "priced", mixture)
    out = tmp_path / "outputs" / "priced"
    cmd = [sys.executable, "-m", "datakit_titan.cli", "run", str(phase), "--device", "cpu", "--price-per-hour", "2.5"]
    with open(tmp_path / "run.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cost = out / "cost.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(cost.read_text())["step"] >= 10:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    killed = json.loads(cost.read_text())  # a complete file: writes are atomic
    assert killed["schema"] == "datakit.run_cost/1" and killed["gpu"] == "cpu" and killed["n_gpus"] == 1
    assert 10 <= killed["step"] < STEPS and len(killed["segments"]) == 1
    assert killed["usd_per_gpu_hour"] == 2.5 and killed["price_source"] == "--price-per-hour"
    assert killed["usd"] == pytest.approx(killed["gpu_hours"] * 2.5)

    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # the same command again: resumes
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    done = json.loads(cost.read_text())
    assert len(done["segments"]) == 2 and done["segments"][0] == killed["segments"][0]
    assert done["tokens"] == STEPS * ROWS * SEQ  # trained (n_tokens_seen, restored with the step-8 checkpoint)
    resumed_from = done["segments"][1]["tokens_start"]
    assert resumed_from == 8 * ROWS * SEQ
    # processed counts the steps after the step-8 checkpoint twice: they were paid for twice
    assert done["tokens_processed"] == killed["segments"][0]["tokens_end"] + (STEPS * ROWS * SEQ - resumed_from)
    assert done["wall_hours"] == pytest.approx(sum(s["wall_s"] for s in done["segments"]) / 3600)
    assert done["wall_hours"] > killed["wall_hours"]
    assert done["usd"] == pytest.approx(done["gpu_hours"] * 2.5)
    assert done["usd_per_billion_tokens"] == pytest.approx(done["usd"] / done["tokens"] * 1e9)
    assert done["tokens_per_s"] == pytest.approx(done["tokens_processed"] / (done["wall_hours"] * 3600))
    assert done["mfu"] is None and done["estimate"] is None  # CPU: no peak FLOPS to measure against

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    usd = {}
    for events in sorted(out.glob("tb/**/events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        if "cost/usd" in acc.Tags()["scalars"]:
            usd.update({e.step: e.value for e in acc.Scalars("cost/usd")})
    assert max(usd) == STEPS and usd[STEPS] > 0
    assert sorted(losses(out)) == list(range(1, STEPS + 1))


def test_gpu_fields_mfu_estimate_and_projection_follow_from_the_measured_rate(tmp_path):
    """One A100 80GB (312 TFLOPS bf16) at $3.673/GPU-hour, 1e9 FLOPs/token, a 1e9-token stage; the clock
    moves 100 s while 31.2e6 tokens go through: 312,000 tokens/s = 100% MFU by definition of the formula."""
    from datakit_titan.cost import RunCost, stage_estimate
    from datakit_titan.estimate import gpu_for_device_name

    gpu = gpu_for_device_name("NVIDIA A100 80GB PCIe")  # what torch reports on Standard_NC24ads_A100_v4
    peak = gpu.peak_bf16_tflops * 1e12
    est = stage_estimate(gpu_name=gpu.name, peak_flops_per_gpu=peak, n_gpus=1, flops_per_token=1e9, mfu=0.4,
                         stage_tokens=1_000_000_000, usd_per_gpu_hour=3.673)
    assert est["tokens_per_s"] == pytest.approx(0.4 * 312e12 / 1e9)  # 124,800 tokens/s
    assert est["hours"] == pytest.approx(1e9 / 124_800 / 3600) and est["usd"] == pytest.approx(est["hours"] * 3.673)
    two = stage_estimate(gpu_name=gpu.name, peak_flops_per_gpu=peak, n_gpus=2, flops_per_token=1e9, mfu=0.4,
                         stage_tokens=1_000_000_000, usd_per_gpu_hour=3.673)
    assert two["hours"] == pytest.approx(est["hours"] / 2) and two["usd"] == pytest.approx(est["usd"])  # half the time, same GPU-hours
    now = [1000.0]
    cost = RunCost(tmp_path, phase="longctx_sft_dpo", stage=1, gpu="NVIDIA A100 80GB PCIe", n_gpus=1, usd_per_gpu_hour=3.673,
                   price_source="dated table", flops_per_token=1e9, peak_flops_per_gpu=peak, stage_tokens=1_000_000_000,
                   estimate=est, clock=lambda: now[0])
    cost.begin(0)
    now[0] += 100.0
    rec = cost.update(step=10, tokens=31_200_000)
    assert rec["tokens_per_s"] == pytest.approx(312_000) and rec["mfu"] == pytest.approx(1.0)
    assert rec["usd"] == pytest.approx(100 / 3600 * 3.673)
    assert rec["usd_per_billion_tokens"] == pytest.approx(rec["usd"] / 31.2e6 * 1e9)
    proj = rec["projected"]
    assert proj["hours"] == pytest.approx(1e9 / 312_000 / 3600) and proj["usd"] == pytest.approx(proj["hours"] * 3.673)
    assert proj["speed_vs_estimate"] == pytest.approx(312_000 / 124_800)  # 2.5x faster than the 40% MFU estimate
    m = cost.metrics()
    assert m["cost/mfu"] == pytest.approx(1.0) and m["cost/speed_vs_estimate"] == pytest.approx(2.5)
    assert m["cost/projected_usd"] == pytest.approx(proj["usd"])
    assert cost.write()["segments"][0]["tokens_end"] == 31_200_000
    assert json.loads((tmp_path / "cost.json").read_text())["mfu"] == pytest.approx(1.0)
