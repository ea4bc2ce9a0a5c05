"""SkyPilot, called in its own Python environment.

SkyPilot pins `click<8.2`, while wandb, spaCy and huggingface_hub need click >= 8.2: one environment
cannot hold both, so SkyPilot lives in its own virtual environment (`make cloud` creates `.venv-sky`
with the Azure and RunPod extras; `make test` creates it with the base package only) and we call it
as a program: its CLI (`sky jobs launch`, `sky logs`, ...) and, for parsing task YAML and reading its
catalog, a few lines of Python run by that environment's interpreter.

Where: $DATAKIT_SKY_PYTHON (a python with `sky` importable), else `.venv-sky/` at the repository root,
else the `sky` on $PATH (a pipx install).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from datakit.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[4]  # engines/titan/datakit_titan/cloud/sky.py -> the checkout
INSTALL_FIX = "run `make cloud` (SkyPilot with Azure + RunPod in .venv-sky), or `pipx install 'skypilot[azure,runpod]'`"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def sky_python() -> Path | None:
    """The interpreter of SkyPilot's environment, or None when SkyPilot is not installed."""
    env = os.environ.get("DATAKIT_SKY_PYTHON")
    if env:
        return Path(env)
    local = REPO_ROOT / ".venv-sky" / "bin" / "python"
    if local.exists():
        return local
    sky = shutil.which("sky")
    if sky:
        py = Path(sky).resolve().parent / "python"
        return py if py.exists() else None
    return None


def sky_bin() -> Path:
    py = sky_python()
    if py is None or not (py.parent / "sky").exists():
        raise UserError("SkyPilot is not installed", field="--cloud", fix=INSTALL_FIX)
    return py.parent / "sky"


def _run_python(code: str, *args: str, timeout: float = 120) -> dict:
    """Run `code` in SkyPilot's interpreter; it prints one JSON object as its last line."""
    py = sky_python()
    if py is None:
        raise UserError("SkyPilot is not installed", field="--cloud", fix=INSTALL_FIX)
    r = subprocess.run([str(py), "-c", code, *args], capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"SkyPilot ({py}) failed: {_ANSI.sub('', r.stderr)[-2000:]}")
    return json.loads(lines[-1])


_VALIDATE = r"""
import json, sys
import sky
try:
    task = sky.Task.from_yaml(sys.argv[1])
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"})); sys.exit(0)
res = []
for r in task.resources:
    res.append({"cloud": str(r.cloud) if r.cloud else None, "region": r.region, "accelerators": r.accelerators,
                "use_spot": r.use_spot, "disk_size": r.disk_size, "job_recovery": r.job_recovery})
print(json.dumps({
    "version": sky.__version__, "name": task.name, "num_nodes": task.num_nodes, "resources": res,
    "workdir": task.workdir, "envs": task.envs, "secrets": sorted(task.secrets),
    "managed_secrets": sorted(r.name for r in task.managed_secret_refs),
    "storage_mounts": {p: s.to_yaml_config() for p, s in task.storage_mounts.items()},
    "setup": task.setup, "run": task.run,
}, default=str))
"""


def validate_task(yaml_path: str | Path) -> dict:
    """Parse a task YAML with SkyPilot's own parser (`sky.Task.from_yaml`); returns what it understood."""
    out = _run_python(_VALIDATE, str(yaml_path))
    if "error" in out:
        raise UserError(f"SkyPilot refuses the generated task: {out['error']}", file=str(yaml_path),
                        fix="this is a bug in titan launch's task generation; please report it with the YAML")
    return out


_PRICE = r"""
import json, re, sys
import sky
cloud, accel, count, spot, region = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5] or None
try:
    found = sky.catalog.list_accelerators(name_filter="^" + re.escape(accel) + "$", quantity_filter=count, clouds=cloud,
                                          region_filter=region, case_sensitive=False, require_price=True)
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {str(e)[:300]}"})); sys.exit(0)
best = None
for items in found.values():
    for it in items:
        p = it.spot_price if spot else it.price
        if p is None or p != p or p <= 0:
            continue
        if best is None or p < best["usd_per_hour"]:
            best = {"usd_per_hour": float(p), "instance_type": it.instance_type, "region": it.region}
print(json.dumps(best or {"error": "no priced offering"}))
"""


def catalog_price(cloud: str, accelerator: str, count: int, spot: bool, region: str | None) -> dict:
    """Cheapest $/hour of a node with `count` x `accelerator` in SkyPilot's catalog (its cached copy under
    ~/.sky/catalogs, refreshed online): {"usd_per_hour", "instance_type", "region"} or {"error": why}."""
    if sky_python() is None:
        return {"error": "SkyPilot is not installed"}
    try:
        return _run_python(_PRICE, cloud, accelerator, str(count), "1" if spot else "0", region or "", timeout=90)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)[:300]}


def check_cloud(cloud: str) -> None:
    """`sky check <cloud>`: raise a UserError with SkyPilot's own reason when the cloud is not enabled."""
    r = subprocess.run([str(sky_bin()), "check", cloud], capture_output=True, text=True, timeout=300)
    text = _ANSI.sub("", r.stdout + r.stderr)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"\s*{re.escape(cloud)}\b.*: disabled", line, re.IGNORECASE):
            reason = [ln.strip() for ln in lines[i + 1 : i + 6] if ln.strip() and not ln.strip().startswith("🎉")]
            raise UserError(f"SkyPilot cannot use {cloud}: {line.strip()}", field="--cloud",
                            fix=f"set up the credentials SkyPilot asks for, then `sky check {cloud}`", details=reason)
    if r.returncode != 0:
        raise UserError(f"`sky check {cloud}` failed (exit {r.returncode})", field="--cloud", fix=f"run `sky check {cloud}` and read it",
                        details=text.strip().splitlines()[-5:])


def sky_cli(args: list[str], *, env: dict | None = None) -> int:
    """Run the `sky` command (output streams to the terminal); returns its exit code."""
    cmd = [str(sky_bin()), *args]
    print("$ " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, env=env).returncode
