"""Cost records for any training loop: `<run>/cost.json` (Contract 5), flushed as the run goes.

    cost = CostRecorder("outputs/run/cost.json", gpu_type="H100", n_gpus=8, usd_per_gpu_hour=2.5)
    for batch in loader:
        ...
        cost.step(tokens=batch["input_ids"].numel() * world_size)
    cost.close()

Fields: gpu_type, n_gpus, usd_per_gpu_hour, wall_hours, gpu_hours, cost_usd (= gpu_hours x usd_per_gpu_hour),
tokens, tokens_per_s, steps. A resumed run continues the file's totals (the wall time of every session adds up).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class CostRecorder:
    def __init__(self, path: str | os.PathLike, *, gpu_type: str, usd_per_gpu_hour: float, n_gpus: int = 1, flush_every_s: float = 30.0):
        self.path, self.flush_every_s = Path(path), flush_every_s
        old = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.record = {"gpu_type": gpu_type, "n_gpus": n_gpus, "usd_per_gpu_hour": usd_per_gpu_hour,
                       "wall_hours": float(old.get("wall_hours", 0.0)), "tokens": int(old.get("tokens", 0)), "steps": int(old.get("steps", 0))}
        self._wall0, self._started, self._flushed = self.record["wall_hours"], time.monotonic(), 0.0

    def step(self, tokens: int) -> None:
        self.record["tokens"] += int(tokens)
        self.record["steps"] += 1
        if time.monotonic() - self._flushed >= self.flush_every_s:
            self.flush()

    def flush(self) -> dict:
        r = self.record
        r["wall_hours"] = self._wall0 + (time.monotonic() - self._started) / 3600
        r["gpu_hours"] = r["wall_hours"] * r["n_gpus"]
        r["cost_usd"] = r["gpu_hours"] * r["usd_per_gpu_hour"]
        r["tokens_per_s"] = r["tokens"] / (r["wall_hours"] * 3600) if r["wall_hours"] else 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(r, indent=2))
        os.replace(tmp, self.path)
        self._flushed = time.monotonic()
        return r

    def close(self) -> dict:
        return self.flush()
