"""`datakit synth dpo`: preference pairs whose flaw is proven.

Chosen is a verified plan; rejected is the same problem solved with one typed flaw from the catalog
(`datakit.synth.flaws`). For procedural records the flaw is made by the domain's own solver and the
pair is kept only if the checker accepts chosen and rejects rejected; other pairs are dropped and
counted by reason (the dropped ones are written to `rejects/` for inspection). LLM-made flaws
(`provider != "procedural"`) live in `datakit.synth.dpo_llm`.

Output (Contract 3): `<out>/records/dpo-procedural-s<seed>.jsonl`, one pair per line:
`{"id", "prompt", "chosen", "rejected", "meta": {"flaw", "step", "verified", "domain", "source_id", ...}}`.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from datakit.errors import UserError
from datakit.synth.dpo_sets import iter_set, validate_planning_set
from datakit.synth.flaws import CATALOG, domain_flaws, make_flawed
from datakit.synth.procedural.common import FlawNotApplicable, render_completion
from datakit.synth.procedural.generate import JsonlAppender, existing_ids, single_writer
from datakit.synth.procedural.records import check_completion


def parse_flaws(flaws: list[str] | None) -> list[str] | None:
    if not flaws:
        return None
    unknown = [f for f in flaws if f not in CATALOG]
    if unknown:
        raise UserError(f"unknown flaw {', '.join(map(repr, unknown))}", field="flaws",
                        fix=f"use some of: {', '.join(CATALOG)}")
    return list(dict.fromkeys(flaws))


def pair_from_record(rec: dict, flaw: str, rng: random.Random) -> tuple[dict | None, str]:
    """(pair, "kept") or (None, drop reason) for one procedural planning record and one flaw."""
    domain, inst = rec["domain"], rec["meta"]["instance"]
    try:
        sol = make_flawed(domain, inst, flaw, rng)
    except FlawNotApplicable:
        return None, "not_applicable"
    chosen = render_completion(rec["thinking"], rec["answer"])
    rejected = render_completion(sol.thinking, sol.answer)
    if " ".join(rejected.split()) == " ".join(chosen.split()):
        return None, "same_as_chosen"
    errors = check_completion(domain, inst, sol.thinking, sol.answer)
    pair = {
        "id": f"{rec['id']}:{flaw}",
        "prompt": f"<problem>{rec['problem']}</problem>",
        "chosen": chosen,
        "rejected": rejected,
        "meta": {"flaw": flaw, "step": sol.flaw_step, "location": sol.notes.get("location", "thinking"),
                 "verified": True, "domain": domain, "task": rec.get("task"), "source_id": rec["id"],
                 "provider": "procedural", "model": None, "cost_usd": 0, "rejected_errors": errors[:3],
                 "instance": inst},
    }
    if not errors:
        return pair, "rejected_passes_checker"
    return pair, "kept"


def make_dpo(from_dir: str | Path, out_dir: str | Path, *, flaws: list[str] | None = None, pairs_per_record: int = 1,
             seed: int = 0, limit: int | None = None, progress: bool = True) -> dict:
    """Write proven preference pairs for every procedural planning record of `from_dir` into `out_dir`.

    flaws: restrict to these catalog flaws (default: every flaw the domain supports).
    pairs_per_record: how many different flaws to try to keep per record (flaws are tried in a
    per-record shuffled order until this many pairs verify). seed: fixes the flaw order and edits.
    limit: use only the first N records. Returns counts: pairs kept, dropped by reason, per domain
    and flaw, elapsed seconds.
    """
    wanted = parse_flaws(flaws)
    if pairs_per_record < 1:
        raise UserError(f"pairs_per_record must be >= 1, got {pairs_per_record}", field="pairs-per-record", fix="use 1")
    info = validate_planning_set(from_dir, need_instance=True)
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(from_dir).resolve():
        raise UserError("--out is the same folder as --from", file=str(out_dir), field="out", fix="write pairs to a new folder")
    with single_writer(out_dir):
        return _make_dpo(from_dir, out_dir, info, wanted, pairs_per_record, seed, limit, progress)


def _make_dpo(from_dir, out_dir: Path, info: dict, wanted, pairs_per_record: int, seed: int, limit, progress: bool) -> dict:
    run_id = f"dpo-procedural-s{seed}"
    done = existing_ids(out_dir / "records")
    done_sources = Counter(i.rsplit(":", 1)[0] for i in done)
    kept, dropped = Counter(), Counter()
    skipped = no_instance = chosen_failed = 0
    t0 = time.perf_counter()
    total = min(info["records"], limit) if limit else info["records"]
    with JsonlAppender(out_dir / "records" / f"{run_id}.jsonl") as out, \
            JsonlAppender(out_dir / "rejects" / f"{run_id}.jsonl") as rejects:
        for n, (_, _, rec) in enumerate(tqdm(iter_set(from_dir), total=total, desc="dpo", unit="rec", disable=not progress)):
            if limit is not None and n >= limit:
                break
            inst = rec.get("meta", {}).get("instance")
            if inst is None:
                no_instance += 1
                continue
            if done_sources.get(rec["id"], 0) >= pairs_per_record:
                skipped += 1
                continue
            domain = rec["domain"]
            if check_completion(domain, inst, rec["thinking"], rec["answer"]):
                chosen_failed += 1
                rejects.write({"id": rec["id"], "reason": "chosen_fails_checker", "domain": domain})
                continue
            order = [f for f in domain_flaws(domain) if wanted is None or f in wanted]
            rng = random.Random(f"{seed}:{rec['id']}")
            rng.shuffle(order)
            n_kept = 0
            for flaw in order:
                if n_kept >= pairs_per_record:
                    break
                pair, status = pair_from_record(rec, flaw, random.Random(f"{seed}:{rec['id']}:{flaw}"))
                if status != "kept":
                    dropped[(domain, flaw, status)] += 1
                    if pair is not None:
                        rejects.write({**pair, "reason": status})
                    continue
                n_kept += 1
                if pair["id"] in done:
                    continue
                out.write(pair)
                kept[(domain, flaw)] += 1
    elapsed = time.perf_counter() - t0
    return {
        "out": str(out_dir), "run_id": run_id, "pairs_written": sum(kept.values()),
        "records_skipped_existing": skipped, "records_without_instance": no_instance,
        "chosen_failed_checker": chosen_failed, "dropped": sum(dropped.values()),
        "dropped_by_reason": dict(sum((Counter({r: c}) for (_, _, r), c in dropped.items()), Counter())),
        "dropped_detail": {f"{d}/{f}/{r}": c for (d, f, r), c in sorted(dropped.items())},
        "kept_by_domain_flaw": {f"{d}/{f}": c for (d, f), c in sorted(kept.items())},
        "elapsed_s": round(elapsed, 3),
    }


def format_summary(summary: dict) -> str:
    lines = [f"wrote {summary['pairs_written']} pairs to {summary['out']}/records/{summary['run_id']}.jsonl "
             f"in {summary['elapsed_s']} s"]
    if summary.get("records_skipped_existing"):
        lines.append(f"skipped {summary['records_skipped_existing']} records already paired (resume)")
    if summary.get("dropped"):
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["dropped_by_reason"].items()))
        lines.append(f"dropped {summary['dropped']} candidate pairs ({reasons}); see {summary['out']}/rejects/")
    if summary.get("records_without_instance"):
        lines.append(f"{summary['records_without_instance']} records had no instance (use an LLM provider for those)")
    if summary.get("chosen_failed_checker"):
        lines.append(f"{summary['chosen_failed_checker']} source records failed their own checker and were skipped")
    for k, v in summary.get("kept_by_domain_flaw", {}).items():
        lines.append(f"  {k:45s} {v}")
    return "\n".join(lines)
