"""<run>/cost.json: written as a real `titan run --device cpu` goes, complete after a kill -9, added to by
the resumed run (a second segment), and the same figures in TensorBoard."""

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

pytestmark = pytest.mark.slow


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
