"""`datakit synth sft`: planning records as `{"prompt", "completion"}` for the phase-3 SFT mixture.

prompt = `<problem>..</problem>`, completion = `<thinking>..</thinking><answer>..</answer>` (Contract 3;
the loss applies to the completion only). Records that carry a procedural instance are re-checked on
the way (`verify=True`): one that fails its checker goes to `rejects/` instead of the set.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from datakit.errors import UserError
from datakit.synth.dpo_sets import iter_set, validate_planning_set
from datakit.synth.procedural.common import render_completion
from datakit.synth.procedural.generate import JsonlAppender, existing_ids, single_writer
from datakit.synth.procedural.records import check_completion


def sft_record(rec: dict) -> dict:
    """The SFT form of one planning record (same id, provenance kept in meta)."""
    meta = rec.get("meta", {}) or {}
    out_meta = {"domain": rec["domain"], "task": rec.get("task"), "source_id": rec.get("id"),
                "provider": meta.get("provider"), "model": meta.get("model"),
                "verified": bool(meta.get("verified")) and meta.get("instance") is not None}
    if meta.get("instance") is not None:
        out_meta["instance"] = meta["instance"]
    return {"id": rec.get("id"), "prompt": f"<problem>{rec['problem']}</problem>",
            "completion": render_completion(rec["thinking"], rec["answer"]), "meta": out_meta}


def make_sft(from_dir: str | Path, out_dir: str | Path, *, verify: bool = True, progress: bool = True) -> dict:
    """Export every planning record of `from_dir` to `<out_dir>/records/sft.jsonl` (resumable by id).

    verify: re-run the checker on records with a structured instance and keep only those that pass.
    Returns counts: written, skipped (already there), rejected, per domain.
    """
    validate_planning_set(from_dir, need_instance=False)
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(from_dir).resolve():
        raise UserError("--out is the same folder as --from", file=str(out_dir), field="out", fix="export to a new folder")
    with single_writer(out_dir):
        return _make_sft(from_dir, out_dir, verify, progress)


def _make_sft(from_dir, out_dir: Path, verify: bool, progress: bool) -> dict:
    done = existing_ids(out_dir / "records")
    per_domain, skipped, t0 = Counter(), 0, time.perf_counter()
    with JsonlAppender(out_dir / "records" / "sft.jsonl") as out, JsonlAppender(out_dir / "rejects" / "sft.jsonl") as rejects:
        for _, _, rec in tqdm(iter_set(from_dir), desc="sft", unit="rec", disable=not progress):
            if rec.get("id") in done:
                skipped += 1
                continue
            inst = (rec.get("meta") or {}).get("instance")
            if verify and inst is not None:
                errors = check_completion(rec["domain"], inst, rec["thinking"], rec["answer"])
                if errors:
                    rejects.write({"id": rec.get("id"), "reason": "fails_checker", "errors": errors[:3]})
                    continue
            out.write(sft_record(rec))
            per_domain[rec["domain"]] += 1
        written, n_rejects = out.n, rejects.n
    return {"out": str(out_dir), "records_written": written, "records_skipped_existing": skipped, "rejects": n_rejects,
            "per_domain": dict(per_domain), "elapsed_s": round(time.perf_counter() - t0, 3)}
