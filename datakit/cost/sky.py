"""SkyPilot's own record of what its clusters cost (`sky cost-report`), read in SkyPilot's environment.

SkyPilot lives in its own virtual environment (`make cloud` / `make test`: .venv-sky; see docs/cloud.md),
so this runs `sky.core.cost_report()` there: it reads SkyPilot's local state (~/.sky), no API server,
no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from datakit.errors import UserError

_CODE = r"""
import json
from sky import core
rows = core.cost_report()
print(json.dumps([{"name": r.get("name"), "cloud": r.get("cloud"), "accelerators": r.get("accelerators"),
                   "num_nodes": r.get("num_nodes"), "duration_s": r.get("duration"), "total_cost": r.get("total_cost")}
                  for r in rows], default=str))
"""


def sky_python() -> Path | None:
    if os.environ.get("DATAKIT_SKY_PYTHON"):
        return Path(os.environ["DATAKIT_SKY_PYTHON"])
    local = Path(__file__).resolve().parents[2] / ".venv-sky" / "bin" / "python"
    if local.exists():
        return local
    sky = shutil.which("sky")
    return Path(sky).resolve().parent / "python" if sky else None


def sky_cost_report() -> list[dict]:
    py = sky_python()
    if py is None or not py.exists():
        raise UserError("SkyPilot is not installed", field="--sky", fix="run `make cloud` (or `make test`), or leave --sky out")
    r = subprocess.run([str(py), "-c", _CODE], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("[")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"SkyPilot's cost report failed: {r.stderr[-2000:]}")
    return json.loads(lines[-1])
