"""The spend datakit itself records: synth ledgers and GPU run cost files."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from datakit.errors import UserError

RUN_COST_SCHEMA = "datakit.run_cost/1"  # engines/titan/datakit_titan/cost.py writes it
SKIP_DIRS = {".venv", ".venv-sky", ".git", "node_modules", "tokens"}


def _walk(root: Path, filename: str):
    if root.is_file():
        if root.name == filename:
            yield root
        return
    for path in root.rglob(filename):
        if not SKIP_DIRS & set(path.relative_to(root).parts[:-1]):
            yield path


def _records_cost(folder: Path) -> tuple[dict[str, float], int]:
    """What a synth folder's kept records cost, by provider/model (records' meta.cost_usd), and how many."""
    from datakit.synth.store import OutputFolder

    by_model: dict[str, float] = defaultdict(float)
    n = 0
    for r in OutputFolder(folder).records():
        meta = r.get("meta", {})
        provider, model = meta.get("provider") or "?", meta.get("model")
        by_model[f"{provider}/{model}" if model else provider] += float(meta.get("cost_usd", 0) or 0)
        n += 1
    return dict(by_model), n


def synth_rows(roots: list[Path]) -> list[dict]:
    """One row per synth output folder with a budget ledger: spent, reserved, budget, and the records' cost
    by provider/model (what the kept records cost; rejects are in `spent_usd` only)."""
    from datakit.synth.ledger import LEDGER_FILE, Ledger

    rows, seen = [], set()
    for root in roots:
        for path in sorted(_walk(root, LEDGER_FILE)):
            seen.add(path.parent)
            t = Ledger(path.parent, None).totals()
            by_model, n_records = _records_cost(path.parent)
            rows.append({
                "kind": "synth", "folder": str(path.parent), "models": by_model, "n_records": n_records,
                "spent_usd": t.spent_usd, "reserved_usd": t.reserved_usd, "budget_usd": t.budget_usd,
                "n_calls": t.n_calls_settled + t.n_calls_orphaned,
            })
    for root in roots:  # folders of records made without paid calls (procedural): $0, listed all the same
        for d in sorted(p for p in ([root] if root.is_file() else root.rglob("records")) if p.is_dir() and any(p.glob("*.jsonl"))):
            if d.parent in seen or SKIP_DIRS & set(d.parts):
                continue
            by_model, n_records = _records_cost(d.parent)
            rows.append({"kind": "synth", "folder": str(d.parent), "models": by_model, "n_records": n_records,
                         "spent_usd": 0.0, "reserved_usd": 0.0, "budget_usd": None, "n_calls": 0})
    return rows


def _recorder_row(path: Path, rec: dict) -> dict:
    """A cost.json from datakit.adapters.records.CostRecorder (a user's own training loop): its fields mapped
    onto the engine's row; the run folder's name stands for the phase."""
    tokens = int(rec.get("tokens", 0))
    return {
        "kind": "gpu", "folder": str(path.parent), "phase": path.parent.name, "stage": 1, "gpu": rec["gpu_type"],
        "n_gpus": rec.get("n_gpus", 1), "wall_hours": rec.get("wall_hours", 0.0), "gpu_hours": rec["gpu_hours"], "usd": rec["cost_usd"],
        "usd_per_gpu_hour": rec.get("usd_per_gpu_hour"), "price_source": "CostRecorder (your training loop)", "tokens": tokens,
        "usd_per_billion_tokens": rec["cost_usd"] / tokens * 1e9 if tokens else None, "segments": None, "projected_usd": None,
    }


def gpu_rows(roots: list[Path]) -> list[dict]:
    """One row per training run folder with a cost.json (each seq-len stage is its own run): the engine's
    (`titan run`, schema datakit.run_cost/1) and CostRecorder's (datakit.adapters.records, any training loop)."""
    rows = []
    for root in roots:
        for path in sorted(_walk(root, "cost.json")):
            try:
                rec = json.loads(path.read_text())
            except ValueError as e:
                raise UserError(f"not valid JSON: {e}", file=str(path), fix="a run's cost.json is rewritten at its next log step; delete it if the run is gone") from e
            if rec.get("schema") != RUN_COST_SCHEMA:
                if isinstance(rec, dict) and {"gpu_type", "cost_usd", "gpu_hours"} <= set(rec):
                    rows.append(_recorder_row(path, rec))
                continue
            rows.append({
                "kind": "gpu", "folder": str(path.parent), "phase": rec["phase"], "stage": rec.get("stage", 1), "gpu": rec["gpu"],
                "n_gpus": rec["n_gpus"], "wall_hours": rec["wall_hours"], "gpu_hours": rec["gpu_hours"], "usd": rec["usd"],
                "usd_per_gpu_hour": rec["usd_per_gpu_hour"], "price_source": rec.get("price_source", ""), "tokens": rec["tokens"],
                "usd_per_billion_tokens": rec.get("usd_per_billion_tokens"), "segments": len(rec.get("segments", [])),
                "projected_usd": (rec.get("projected") or {}).get("usd"),
            })
    return rows
