"""Write procedural planning records (Contract 3) to `<out>/records/<run_id>.jsonl`, resumably.

Record `i` of a run belongs to domain `domains[i % len(domains)]` and is built from a random generator
seeded by (seed, domain, difficulty, i), so the same command always writes the same records, and its
id (`proc-<domain>-<difficulty>-s<seed>-<i>`) lets a rerun skip what is already on disk.
"""

from __future__ import annotations

import json
import random
import time
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from datakit.errors import UserError
from datakit.synth.procedural.common import FlawNotApplicable
from datakit.synth.procedural.records import check_completion

RESERVED_SEED_FLOOR = 2**62  # seeds >= this are eval-only (datakit.eval.planning's held-out problems): refused here

LEVELS = ("easy", "medium", "hard")
MAX_ATTEMPTS = 20


def _domains():
    from datakit.synth.procedural import DOMAINS

    return DOMAINS


def resolve_domains(domains: list[str] | None) -> list[str]:
    known = _domains()
    if not domains:
        return list(known)
    unknown = [d for d in domains if d not in known]
    if unknown:
        raise UserError(f"unknown domain {', '.join(map(repr, unknown))}", field="domain",
                        fix=f"use some of: {', '.join(known)}")
    return list(dict.fromkeys(domains))


def parse_difficulty(difficulty: str, domain: str) -> tuple[str, dict]:
    """(tag, params) for a difficulty string: `easy|medium|hard`, optionally with overrides.

    Overrides are `key=value` after a comma, e.g. `hard,size=20,tightness=0.9`; `size` is the number
    of tasks / projects / places, or the grid side for multi_agent; `tightness` (0..1) is how little
    slack the instance leaves. Values outside a domain's limits are impossible settings (UserError).
    """
    mod = _domains()[domain]
    parts = [p.strip() for p in str(difficulty).split(",") if p.strip()]
    level = "medium"
    if parts and "=" not in parts[0]:
        level = parts.pop(0)
    if level not in LEVELS:
        raise UserError(f"unknown difficulty {level!r}", field="difficulty",
                        fix="use easy, medium or hard, optionally with overrides like 'hard,size=12,tightness=0.8'")
    params = dict(mod.DIFFICULTY[level])
    for p in parts:
        key, _, raw = p.partition("=")
        key = key.strip()
        if key not in mod.LIMITS:
            raise UserError(f"unknown difficulty setting {key!r}", field="difficulty",
                            fix=f"settings are: {', '.join(mod.LIMITS)}")
        try:
            value = int(raw) if key == "size" else float(raw)
        except ValueError:
            raise UserError(f"{key}={raw!r} is not a number", field="difficulty",
                            fix="write e.g. size=12 or tightness=0.5") from None
        lo, hi = mod.LIMITS[key]
        if not lo <= value <= hi:
            raise UserError(f"impossible setting {key}={value} for {domain}", field="difficulty",
                            fix=f"{key} must be between {lo} and {hi} for {domain}")
        params[key] = value
    tag = "+".join([level, *sorted(parts)]).replace("=", "").replace(".", "p")
    return tag, params


def make_record(domain: str, index: int, seed: int = 0, difficulty: str = "medium") -> dict:
    """One verified planning record (Contract 3); raises RuntimeError if no valid instance comes out."""
    mod = _domains()[domain]
    tag, params = parse_difficulty(difficulty, domain)
    last_error = "no attempt"
    for attempt in range(MAX_ATTEMPTS):
        rng = random.Random(f"{seed}:{domain}:{tag}:{index}:{attempt}")
        try:
            inst = mod.make_instance(rng, params)
            sol = mod.solve(inst)
        except FlawNotApplicable as e:  # e.g. robots that cannot all be routed; try the next instance
            last_error = str(e)
            continue
        thinking, answer = sol.thinking, sol.answer
        errors = check_completion(domain, inst, thinking, answer)
        if errors:
            raise RuntimeError(f"solver output failed its checker ({domain} #{index}): {errors[:3]}")
        return {
            "id": record_id(domain, tag, seed, index),
            "domain": domain,
            "task": mod.task_title(inst),
            "problem": mod.render_problem(inst),
            "thinking": thinking,
            "answer": answer,
            "meta": {"provider": "procedural", "model": None, "cost_usd": 0, "verified": True, "instance": inst,
                     "difficulty": tag, "params": params, "seed": seed, "index": index, "n_steps": len(sol.steps)},
        }
    raise RuntimeError(f"no valid {domain} instance after {MAX_ATTEMPTS} attempts: {last_error}")


def record_id(domain: str, tag: str, seed: int, index: int) -> str:
    return f"proc-{domain}-{tag}-s{seed}-{index}"


def existing_ids(folder: Path) -> set[str]:
    """Ids already written under `folder/*.jsonl` (a torn last line is ignored; `repair_tail` removes it)."""
    ids = set()
    if not folder.is_dir():
        return ids
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    ids.add(json.loads(line)["id"])
                except (ValueError, KeyError, TypeError):
                    continue
    return ids


def repair_tail(path: Path) -> None:
    """Cut a half-written last line (a kill during a write) so appends start on a clean line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, 2)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        f.truncate(data.rfind(b"\n") + 1)


@contextmanager
def single_writer(out_dir: Path):
    """Hold the folder's lock (datakit.synth.store) so two runs never append to the same set at once."""
    from datakit.synth.store import OutputFolder

    folder = OutputFolder(out_dir)
    folder.lock()
    try:
        yield folder
    finally:
        folder.unlock()


class JsonlAppender:
    """Append one JSON object per line, flushed, creating the file lazily (no empty files for no rows)."""

    def __init__(self, path: Path):
        self.path, self._f, self.n = path, None, 0

    def write(self, obj: dict) -> None:
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            repair_tail(self.path)
            self._f = open(self.path, "a", encoding="utf-8")
        self._f.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._f.flush()
        self.n += 1

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def generate(out_dir: Path, count: int, seed: int = 0, domains: list[str] | None = None,
             difficulty: str = "medium", progress: bool = True) -> dict:
    """Write `count` verified planning records round-robin over `domains` into `out_dir`.

    out_dir: the dataset folder; records go to `records/procedural-s<seed>.jsonl`, failures to
    `rejects/procedural-s<seed>.jsonl`. count: records in the set (a rerun with the same settings
    and a larger count extends it; ids already on disk are skipped). seed: makes the set reproducible.
    domains: subset of the five plan domains (default all). difficulty: `easy|medium|hard`, with
    optional overrides such as `hard,size=12,tightness=0.8`.
    Returns a summary: written, skipped, rejects, per-domain counts, elapsed seconds, records/s.
    """
    if count < 0:
        raise UserError(f"count must be >= 0, got {count}", field="count", fix="pass --count 1000")
    if seed >= RESERVED_SEED_FLOOR:  # the held-out planning problems of `titan eval` live there
        raise UserError(f"seed {seed} is reserved for eval problems (>= 2**62)", field="seed", fix="use a seed below 2**62")
    names = resolve_domains(domains)
    tags = {d: parse_difficulty(difficulty, d)[0] for d in names}  # validates before anything is written
    out_dir = Path(out_dir)
    run_id = f"procedural-s{seed}"
    with single_writer(out_dir):
        return _generate(out_dir, run_id, count, seed, names, tags, difficulty, progress)


def _generate(out_dir: Path, run_id: str, count: int, seed: int, names: list[str], tags: dict, difficulty: str,
              progress: bool) -> dict:
    done = existing_ids(out_dir / "records")
    per_domain = {d: 0 for d in names}
    skipped = 0
    t0 = time.perf_counter()
    with JsonlAppender(out_dir / "records" / f"{run_id}.jsonl") as out, \
            JsonlAppender(out_dir / "rejects" / f"{run_id}.jsonl") as rejects:
        for i in tqdm(range(count), desc="procedural", unit="rec", disable=not progress):
            domain = names[i % len(names)]
            rid = record_id(domain, tags[domain], seed, i)
            if rid in done:
                skipped += 1
                continue
            try:
                rec = make_record(domain, i, seed, difficulty)
            except RuntimeError as e:
                rejects.write({"id": rid, "domain": domain, "reason": "generation_failed", "detail": str(e),
                               "meta": {"provider": "procedural", "seed": seed, "index": i}})
                continue
            out.write(rec)
            per_domain[domain] += 1
        written, n_rejects = out.n, rejects.n
    elapsed = time.perf_counter() - t0
    return {"out": str(out_dir), "run_id": run_id, "records_written": written, "records_skipped_existing": skipped,
            "rejects": n_rejects, "per_domain": per_domain, "elapsed_s": round(elapsed, 3),
            "records_per_s": round(written / elapsed, 1) if elapsed > 0 else 0.0}
