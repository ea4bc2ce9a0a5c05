"""`<run>/cost.json`: what a training run has cost so far, written as it goes.

Every `titan run` (each stage's TorchTitan run folder) keeps one, flushed at every metrics log step
(`[metrics] log_every`) and at the end, atomically (write a temporary file, fsync, rename): a kill -9
leaves the previous complete file. A restarted run (resume after a crash or a spot preemption) adds a
segment; wall time, GPU-hours and dollars add up over segments, because every segment was paid for.

    gpu, n_gpus             the device name torch reports ("cpu" on CPU) and the world size
    wall_hours, gpu_hours   over all segments (training process time: provisioning and setup are not in it)
    usd_per_gpu_hour        --price-per-hour, or the price `titan launch` found (SkyPilot catalog / dated table);
                            CPU and unpriced runs: 0 unless --price-per-hour (price_source says which)
    usd                     gpu_hours x usd_per_gpu_hour
    tokens                  tokens trained (the trainer's n_tokens_seen, restored with checkpoints)
    tokens_processed        tokens pushed through in all segments (retrained steps after a crash count again)
    tokens_per_s, mfu       tokens_processed / wall seconds, and the MFU that rate means (GPU runs)
    usd_per_billion_tokens  usd / tokens x 1e9
    estimate                `titan estimate` for this stage: tokens/s, hours, dollars at its assumed MFU (GPU runs)
    projected               this stage's hours and dollars at the measured rate, and measured / estimated speed

No torch here: `datakit cost` reads these files without the engine.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = "datakit.run_cost/1"
FILE = "cost.json"


def _now_iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def stage_estimate(*, gpu_name: str, peak_flops_per_gpu: float, n_gpus: int, flops_per_token: float, mfu: float,
                   stage_tokens: int | None, usd_per_gpu_hour: float | None) -> dict:
    """`titan estimate`'s figures for one stage: tokens/s at `mfu` of the GPUs' peak, hours, dollars."""
    tps = mfu * peak_flops_per_gpu * n_gpus / flops_per_token
    hours = stage_tokens / tps / 3600 if stage_tokens else None
    usd = hours * n_gpus * usd_per_gpu_hour if hours is not None and usd_per_gpu_hour is not None else None
    return {"mfu": mfu, "gpu": gpu_name, "tokens_per_s": tps, "hours": hours, "usd": usd}


class RunCost:
    """The cost record of one run folder. Call `update(step, tokens)` as training goes, `write()` to flush."""

    def __init__(self, folder: str | Path, *, phase: str, stage: int, gpu: str, n_gpus: int, usd_per_gpu_hour: float | None,
                 price_source: str, flops_per_token: float | None = None, peak_flops_per_gpu: float | None = None,
                 stage_tokens: int | None = None, estimate: dict | None = None, clock=time.time):
        self.path = Path(folder) / FILE
        self.clock = clock
        self.start = clock()
        prev = {}
        if self.path.exists():
            try:
                prev = json.loads(self.path.read_text())
            except (OSError, ValueError):
                prev = {}  # unreadable (should not happen: writes are atomic); start a fresh record
        self.segments = list(prev.get("segments", []))
        self.tokens_start = int(prev.get("tokens", 0))
        self.segment = {"started": _now_iso(self.start), "wall_s": 0.0, "tokens_start": self.tokens_start,
                        "tokens_end": self.tokens_start, "step_end": prev.get("step", 0)}
        priced = usd_per_gpu_hour is not None
        self.fields = {
            "schema": SCHEMA, "phase": phase, "stage": stage, "gpu": gpu, "n_gpus": n_gpus,
            "usd_per_gpu_hour": float(usd_per_gpu_hour) if priced else 0.0,
            "price_source": price_source if priced else f"{price_source}: not priced, $0 (pass --price-per-hour)",
        }
        self.flops_per_token, self.peak = flops_per_token, peak_flops_per_gpu
        self.begun = False
        self.stage_tokens, self.estimate = stage_tokens, estimate
        self.update(step=self.segment["step_end"], tokens=self.tokens_start)

    def begin(self, tokens_start: int) -> None:
        """Where this segment's tokens start: a resumed run restores n_tokens_seen from its checkpoint (which
        may be behind the last flush of the run it resumes), known only once training has started."""
        self.segment["tokens_start"] = int(tokens_start)
        self.begun = True

    def update(self, *, step: int, tokens: int) -> dict:
        self.segment.update(wall_s=self.clock() - self.start, tokens_end=int(tokens), step_end=int(step))
        segs = [*self.segments, self.segment]
        wall_s = sum(s["wall_s"] for s in segs)
        processed = sum(max(0, s["tokens_end"] - s["tokens_start"]) for s in segs)
        n = self.fields["n_gpus"]
        gpu_hours = wall_s / 3600 * n
        usd = gpu_hours * self.fields["usd_per_gpu_hour"]
        tps = processed / wall_s if wall_s > 0 else 0.0
        rec = dict(self.fields)
        rec.update(
            step=int(step), wall_hours=wall_s / 3600, gpu_hours=gpu_hours, usd=usd, tokens=int(tokens), tokens_processed=processed,
            tokens_per_s=tps,
            mfu=(tps * self.flops_per_token / (self.peak * n)) if self.peak and self.flops_per_token else None,
            usd_per_billion_tokens=usd / tokens * 1e9 if tokens else None,
            estimate=self.estimate,
            projected=None,
            segments=segs,
            updated=_now_iso(self.clock()),
        )
        if self.stage_tokens and tps > 0:
            hours = self.stage_tokens / tps / 3600
            rec["projected"] = {"stage_tokens": self.stage_tokens, "hours": hours, "usd": hours * n * rec["usd_per_gpu_hour"],
                                "speed_vs_estimate": tps / self.estimate["tokens_per_s"] if self.estimate else None}
        self.record = rec
        return rec

    def write(self) -> dict:
        write_json_atomic(self.path, self.record)
        return self.record

    def metrics(self) -> dict[str, float]:
        """The numeric fields, for TensorBoard / wandb (prefix cost/)."""
        r = self.record
        out = {f"cost/{k}": float(r[k]) for k in ("wall_hours", "gpu_hours", "usd", "usd_per_gpu_hour", "tokens_per_s") if r.get(k) is not None}
        for k in ("mfu", "usd_per_billion_tokens"):
            if r.get(k) is not None:
                out[f"cost/{k}"] = float(r[k])
        if r.get("projected"):
            out["cost/projected_hours"] = float(r["projected"]["hours"])
            out["cost/projected_usd"] = float(r["projected"]["usd"])
            if r["projected"]["speed_vs_estimate"] is not None:
                out["cost/speed_vs_estimate"] = float(r["projected"]["speed_vs_estimate"])
        return out
