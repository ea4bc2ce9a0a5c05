"""Multi-node training through torchrun: two "nodes" of one process each on this machine (gloo, CPU), joined
by `titan run --nnodes 2 --node-rank R --master-addr 127.0.0.1`, log the same loss curve as one node running
two processes (the same global batch, the same data-parallel ranks reading the same documents), and a run
stopped on both nodes resumes on both and still logs that curve. Bad node options are one line each."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_titan_train import SEQ, losses, write_phase
from titan_fixture import write_mixture

from datakit.errors import UserError
from datakit_titan.nodes import Nodes, resolve_nodes

STEPS = 8  # 2 ranks x 4 rows x 64 tokens per step; a checkpoint every 8 steps (write_phase), stopped at 4


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def titan(phase: Path, *args: str, log: Path) -> subprocess.Popen:
    f = open(log, "a")
    return subprocess.Popen([sys.executable, "-m", "datakit_titan.cli", "run", str(phase), "--device", "cpu", *args],
                            stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ, WANDB_MODE="disabled"), start_new_session=True)


def two_nodes(phase: Path, *args: str) -> list[str]:
    """Both nodes' `titan run` at once, each with its own rank; returns their logs."""
    port = str(_port())
    logs = [phase.with_name(f"{phase.stem}.node{r}.log") for r in (0, 1)]
    procs = [titan(phase, "--nnodes", "2", "--node-rank", str(r), "--master-addr", "127.0.0.1", "--master-port", port, *args, log=logs[r])
             for r in (0, 1)]
    try:
        deadline = time.time() + 600
        while time.time() < deadline and any(p.poll() is None for p in procs) and not any(p.poll() for p in procs):
            time.sleep(0.5)
    finally:  # a node that failed leaves the other waiting at the rendezvous: stop it (and its torchrun workers)
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    texts = [log.read_text() for log in logs]
    assert [p.returncode for p in procs] == [0, 0], texts[0][-3000:] + texts[1][-3000:]
    return texts


@pytest.mark.slow
def test_two_nodes_match_one_node_and_resume_on_both(tmp_path):
    mixture = write_mixture(tmp_path / "mix")
    tokens = STEPS * SEQ * 4 * 2
    one = write_phase(tmp_path, "one_node", mixture, steps=STEPS * 2)  # tokens = steps x 4 rows x 64: STEPS steps at 2 ranks
    two = write_phase(tmp_path, "two_nodes", mixture, steps=STEPS * 2)

    ref = titan(one, "--nproc", "2", log=one.with_suffix(".log"))
    assert ref.wait(timeout=600) == 0, one.with_suffix(".log").read_text()[-3000:]
    reference = losses(tmp_path / "outputs" / "one_node")
    assert sorted(reference) == list(range(1, STEPS + 1)), one.with_suffix(".log").read_text()[-3000:]

    first = two_nodes(two, "--steps", "4")
    assert f"global batch {tokens // STEPS:,} tokens (4 x 1 accum x 2)" in first[0] and "2 nodes x 1 x cpu (this is node 1" in first[1]
    out = tmp_path / "outputs" / "two_nodes"
    assert max(losses(out)) == 4 and (out / "checkpoint" / "step-4").is_dir()
    second = two_nodes(two)  # the same commands again: both nodes load step 4 and go on
    assert all("step-4" in t and "Loading the checkpoint" in t for t in second), second[0][-3000:]
    resumed = losses(out)
    assert sorted(resumed) == sorted(reference)
    for step in reference:
        assert resumed[step] == pytest.approx(reference[step], rel=1e-5, abs=1e-6), (step, resumed[step], reference[step])
    assert (out / "checkpoint" / f"step-{STEPS}").is_dir()


def test_torchrun_command_for_each_layout():
    assert Nodes().launcher(1) == [sys.executable]
    assert Nodes().launcher(4)[-2:] == ["--standalone", "--nproc-per-node=4"]
    cmd = resolve_nodes(2, 1, "10.0.0.1", 29555).launcher(8)
    assert cmd[1:] == ["-m", "torch.distributed.run", "--nnodes=2", "--node-rank=1", "--master-addr=10.0.0.1",
                       "--master-port=29555", "--nproc-per-node=8"]
    assert resolve_nodes(2, 1, "10.0.0.1").world(8) == 16


def test_skypilot_variables_fill_in_the_node_options():
    env = {"SKYPILOT_NUM_NODES": "4", "SKYPILOT_NODE_RANK": "3", "SKYPILOT_NODE_IPS": "10.1.0.5\n10.1.0.6\n10.1.0.7\n10.1.0.8"}
    assert resolve_nodes(env=env) == Nodes(4, 3, "10.1.0.5", 29500)
    assert resolve_nodes(2, 0, "127.0.0.1", env=env) == Nodes(2, 0, "127.0.0.1", 29500)  # options win
    assert resolve_nodes(env={}) == Nodes()


@pytest.mark.parametrize("args, words", [
    ((2, 2, "127.0.0.1"), ["--node-rank 2 is out of range for --nnodes 2", "from 0 to 1"]),
    ((2, -1, "127.0.0.1"), ["out of range"]),
    ((2, 0, None), ["needs the address of node 0", "--master-addr"]),
    ((0, 0, None), ["needs at least one node"]),
    ((2, 0, "no-such-host.invalid"), ["does not resolve"]),
])
def test_bad_node_options_are_refused(args, words):
    with pytest.raises(UserError) as e:
        resolve_nodes(*args, env={})
    assert all(w in str(e.value) for w in words) and "(fix: " in str(e.value)


def test_node_rank_out_of_range_is_one_line_from_the_cli(tmp_path):
    r = subprocess.run([sys.executable, "-m", "datakit_titan.cli", "run", str(tmp_path / "p.toml"), "--device", "cpu",
                        "--nnodes", "2", "--node-rank", "5", "--master-addr", "127.0.0.1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("error: --node-rank: --node-rank 5 is out of range") and "\n" not in r.stderr.strip()
