"""`titan launch`: the user's story without a cloud. The dry run of each of the plan's three phases on its
plan hardware prints the task YAML, hours and dollars; the YAML is read back by SkyPilot's own parser
(`sky.Task.from_yaml`, in SkyPilot's environment `.venv-sky`, which `make test` creates); bad input is
refused before anything is rented. No cloud is reached: SkyPilot's catalog download fails offline and
the dated table answers, or a catalog file placed where SkyPilot caches it answers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from datakit_titan.cloud import sky
from datakit_titan.cloud.gpus import parse_gpu
from datakit_titan.cloud.launch import plan_launch, wall_hours
from datakit_titan.phase import load_phase
from datakit_titan.prefs.phase import load_prefs_phase

REPO = Path(__file__).resolve().parents[3]
PHASES = REPO / "engines" / "titan" / "phases"
AZURE_A100_USD = 3.673  # prices.toml: Standard_NC24ads_A100_v4, East US, pay-as-you-go


@pytest.fixture(autouse=True)
def in_repo(tmp_path, monkeypatch):
    """Run from the checkout's root (what launch uploads) with SkyPilot's state in a fresh HOME."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert sky.sky_python() is not None, "SkyPilot's environment is missing: `make test` creates .venv-sky (make .venv-sky/.installed)"


def titan(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "datakit_titan.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=300)


def money(text: str, label: str) -> float:
    return float(re.search(rf"{label}.*?= \$([\d,]+\.\d\d)\n", text).group(1).replace(",", ""))


@pytest.mark.parametrize("phase,cloud,gpu", [
    ("pretrain.toml", "ssh/rtx5080-box", "RTX5080"),          # the plan: phases 1-2 on one RTX 5080 (your own box)
    ("midtrain.toml", "ssh/rtx5080-box", "RTX5080"),
    ("longctx_sft_dpo.toml", "azure", "A100-80GB"),           # the plan: phase 3 on Standard_NC24ads_A100_v4
])
def test_dry_run_of_the_plans_three_phases_prints_yaml_hours_and_dollars(phase, cloud, gpu):
    r = titan("launch", f"engines/titan/phases/{phase}", "--cloud", cloud, "--gpu", gpu, "--dry-run")
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    ph = load_prefs_phase(PHASES / phase) if "sft_dpo" in phase else load_phase(PHASES / phase)
    hours, _ = wall_hours(ph, parse_gpu(gpu), 1, 0.4)
    assert f"-> {hours:,.1f} h" in out
    usd = money(out, "cost:")
    assert usd == pytest.approx(round(hours * (AZURE_A100_USD if cloud == "azure" else 0.0), 2), abs=0.01)
    assert "SkyPilot 0.14.1 parsed the task" in out, out
    task = yaml.safe_load(out.split("--- SkyPilot task YAML ---\n")[1].split("--- dry run")[0])
    assert task["resources"]["accelerators"] == f"{gpu}:1" and task["resources"]["infra"] == cloud
    assert f"titan run engines/titan/phases/{phase}" in task["run"]
    assert "make install" in task["setup"]


def test_phase3_on_two_rtx5090_spot_loads_in_skypilot_with_mounts_and_a_secret_never_written(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "k-123-not-a-real-key")
    plan = plan_launch(PHASES / "longctx_sft_dpo.toml", cloud="runpod", gpu="RTX5090:2", spot=True)
    assert "k-123" not in plan.yaml
    path = tmp_path / "task.yaml"
    path.write_text(plan.yaml)
    got = sky.validate_task(path)  # SkyPilot's own parser, in its own environment
    res = got["resources"][0]
    assert (res["cloud"], res["accelerators"], res["use_spot"], res["disk_size"]) == ("RunPod", {"RTX5090": 2}, True, 256)
    assert res["job_recovery"]["strategy"] == "EAGER_NEXT_REGION"
    assert got["managed_secrets"] == ["WANDB_API_KEY"] and got["secrets"] == []
    mounts = got["storage_mounts"]
    assert mounts["/datakit/mixture"]["name"] == "datakit-mix-longctx-sft-dpo" and mounts["/datakit/mixture"]["mode"] == "MOUNT"
    assert mounts["/datakit/outputs"]["mode"] == "MOUNT_CACHED"  # checkpoints survive a preemption
    assert got["envs"]["DATAKIT_TITAN_WANDB"] == "online"
    assert float(got["envs"]["DATAKIT_TITAN_USD_PER_GPU_HOUR"]) == pytest.approx(plan.price.usd_per_gpu_hour)
    assert "titan refscore engines/titan/phases/longctx_sft_dpo.toml" in got["run"]
    assert "ln -sfn /datakit/outputs/longctx_sft_dpo outputs/longctx_sft_dpo" in got["run"]
    # 2 GPUs: the estimate's time halves (same tokens, twice the FLOPS at the same MFU per GPU)
    one, _ = wall_hours(plan.phase, parse_gpu("RTX5090:1"), 1, 0.4)
    assert plan.hours == pytest.approx(one / 2)


def test_multi_node_runs_torchrun_over_skypilots_node_variables(tmp_path):
    plan = plan_launch(PHASES / "pretrain.toml", cloud="azure", gpu="A100-80GB", nodes=2)
    path = tmp_path / "task.yaml"
    path.write_text(plan.yaml)
    got = sky.validate_task(path)
    assert got["num_nodes"] == 2
    run = got["run"]
    assert 'MASTER_ADDR=$(echo "$SKYPILOT_NODE_IPS" | head -n1)' in run
    assert "$SKYPILOT_NUM_NODES" in run and "$SKYPILOT_NODE_RANK" in run and "$SKYPILOT_NUM_GPUS_PER_NODE" in run
    assert ("titan run engines/titan/phases/pretrain.toml --nproc $SKYPILOT_NUM_GPUS_PER_NODE --nnodes $SKYPILOT_NUM_NODES "
            "--node-rank $SKYPILOT_NODE_RANK --master-addr $MASTER_ADDR") in run  # titan run's own multi-node flags
    assert plan.usd == pytest.approx(plan.hours * 2 * AZURE_A100_USD)


def test_skypilots_cached_catalog_price_wins_over_the_dated_table(tmp_path):
    """A catalog file where SkyPilot caches its catalog (~/.sky/catalogs/v8, SkyPilot's own CSV schema) is read
    by SkyPilot's own catalog code: on-demand and spot prices come from there."""
    cat = Path(os.environ["HOME"]) / ".sky" / "catalogs" / "v8" / "azure"
    cat.mkdir(parents=True)
    gpu_info = "{'Gpus': [{'Name': 'A100-80GB', 'Manufacturer': 'NVIDIA', 'Count': 1.0, 'MemoryInfo': {'SizeInMiB': 81920}}], 'TotalGpuMemoryInMiB': 81920}"
    (cat / "vms.csv").write_text("InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,Generation\n"
                                 f'Standard_NC24ads_A100_v4,A100-80GB,1.0,24.0,220.0,"{gpu_info}",3.5,0.9,westus3,2\n'
                                 f'Standard_NC24ads_A100_v4,A100-80GB,1.0,24.0,220.0,"{gpu_info}",3.9,1.2,eastus,2\n')
    on_demand = plan_launch(PHASES / "longctx_sft_dpo.toml", cloud="azure", gpu="A100-80GB")
    spot = plan_launch(PHASES / "longctx_sft_dpo.toml", cloud="azure", gpu="A100-80GB", spot=True)
    assert (on_demand.price.usd_per_node_hour, on_demand.price.region) == (3.5, "westus3")
    assert on_demand.price.source.startswith("SkyPilot catalog")
    assert spot.price.usd_per_node_hour == 0.9
    assert on_demand.usd == pytest.approx(on_demand.hours * 3.5)


@pytest.mark.parametrize("args,expect", [
    (["--cloud", "azzure", "--gpu", "A100-80GB"], "unknown cloud 'azzure'"),
    (["--cloud", "azure", "--gpu", "V100"], "unknown GPU 'V100'"),
    (["--cloud", "azure", "--gpu", "RTX5090:x"], "bad GPU count"),
    (["--cloud", "runpod", "--gpu", "RTX5080"], "stage 1 (seq_len 8192, 2 rows/GPU) needs ~"),       # 16 GB: does not fit
    (["--cloud", "aws", "--gpu", "RTX5090:2"], "no on-demand price for RTX5090:2 on aws"),         # offline, not in the table
    (["--cloud", "azure", "--gpu", "A100-80GB", "--spot"], "no spot price for A100-80GB:1 on azure"),
])
def test_bad_input_is_refused_before_anything_is_rented(args, expect):
    r = titan("launch", "engines/titan/phases/longctx_sft_dpo.toml", *args, "--dry-run")
    assert r.returncode == 2, r.stdout + r.stderr
    assert expect in r.stderr and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert "fix:" in r.stderr


def test_unknown_names_list_the_valid_ones_and_a_price_flag_unblocks():
    r = titan("launch", "engines/titan/phases/longctx_sft_dpo.toml", "--cloud", "azure", "--gpu", "V100", "--dry-run")
    assert "A100-80GB (a100)" in r.stderr and "RTX5090 (rtx5090)" in r.stderr
    r = titan("launch", "engines/titan/phases/longctx_sft_dpo.toml", "--cloud", "aws", "--gpu", "RTX5090:2", "--price-per-hour", "0.5", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "$1.000/node-hour = $0.500/GPU-hour" in r.stdout and "source: --price-per-hour" in r.stdout


@pytest.mark.slow
def test_launch_without_cloud_credentials_reports_skypilots_check_plainly():
    """A real launch (no --dry-run) with no Azure login: SkyPilot's `sky check` says why, we print it, exit 2.
    Then `titan status` and `titan down` against the same real (empty) SkyPilot state.
    (SkyPilot starts its local API server for the check; it is stopped afterwards.)"""
    try:
        r = titan("launch", "engines/titan/phases/longctx_sft_dpo.toml", "--cloud", "azure", "--gpu", "A100-80GB")
        status = titan("status")
        down = titan("down", "datakit-no-such-job")
    finally:
        subprocess.run([str(sky.sky_bin()), "api", "stop"], capture_output=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "error: --cloud: SkyPilot cannot use azure: Azure: disabled" in r.stderr
    assert "az login" in r.stderr or "pip install" in r.stderr  # SkyPilot's own reason, passed through
    # status = `sky jobs queue` + `sky status`; down = `sky jobs cancel`: SkyPilot's own answers, its exit codes
    assert status.returncode == 0, status.stdout + status.stderr
    assert "sky jobs queue" in status.stderr and "sky status" in status.stderr
    assert "No in-progress managed jobs" in status.stdout and "No existing clusters" in status.stdout
    assert down.returncode != 0 and "sky jobs cancel -y -n datakit-no-such-job" in down.stderr
    assert "No in-progress managed jobs" in down.stdout + down.stderr
