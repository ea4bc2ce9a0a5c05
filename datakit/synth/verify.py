"""`datakit synth verify`: re-run the checkers over a planning, DPO or SFT set.

Per record kind, what "pass" means:
    planning  the answer passes its domain checker (records with `meta.instance`)
    sft       the completion passes its domain checker
    dpo       chosen passes and rejected fails (a pair whose rejected passes is not a proven flaw)
Records without a structured instance cannot be checked by code; they are counted as `unchecked`
(a DPO pair still fails if rejected equals chosen up to whitespace). The report groups counts by
(kind, domain, flaw) and keeps a few failing ids with their first error.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from datakit.synth.dpo_sets import iter_set
from datakit.synth.procedural.common import split_completion
from datakit.synth.procedural.records import check_completion, domain_module, instance_problem

MAX_EXAMPLES = 10


@dataclass
class VerifyReport:
    """Counts by (kind, domain, flaw): {"pass": n, "fail": n, "unchecked": n}, plus failing examples."""

    folder: str
    counts: dict = field(default_factory=lambda: defaultdict(lambda: {"pass": 0, "fail": 0, "unchecked": 0}))
    failures: list = field(default_factory=list)

    def add(self, kind: str, domain: str, flaw: str, status: str, rec_id=None, why: str = "") -> None:
        self.counts[(kind, domain, flaw)][status] += 1
        if status == "fail" and len(self.failures) < MAX_EXAMPLES:
            self.failures.append((rec_id, kind, domain, flaw, why))

    def total(self, status: str) -> int:
        return sum(c[status] for c in self.counts.values())

    @property
    def ok(self) -> bool:
        """True when nothing failed (unchecked records do not fail a set)."""
        return self.total("fail") == 0

    def format(self) -> str:
        lines = [f"{'kind':9s} {'domain':22s} {'flaw':19s} {'pass':>7s} {'fail':>6s} {'unchecked':>9s}"]
        for (kind, domain, flaw), c in sorted(self.counts.items()):
            lines.append(f"{kind:9s} {domain:22s} {flaw:19s} {c['pass']:7d} {c['fail']:6d} {c['unchecked']:9d}")
        lines.append(f"total: {self.total('pass')} pass, {self.total('fail')} fail, {self.total('unchecked')} unchecked "
                     f"in {self.folder}")
        for rec_id, kind, domain, flaw, why in self.failures:
            lines.append(f"  FAIL {rec_id} ({kind} {domain} {flaw}): {why}")
        return "\n".join(lines)


def _kind(rec: dict) -> str:
    if "chosen" in rec and "rejected" in rec:
        return "dpo"
    if "completion" in rec and "prompt" in rec:
        return "sft"
    if "thinking" in rec and "answer" in rec:
        return "planning"
    return "unknown"


def _check(domain: str, inst, text: str) -> list[str]:
    thinking, answer = split_completion(text)
    if not thinking or not answer:
        return ["missing <thinking> or <answer>"]
    return check_completion(domain, inst, thinking, answer)


def verify_record(rec: dict, report: VerifyReport) -> None:
    meta = rec.get("meta") or {}
    kind = _kind(rec)
    domain = str(rec.get("domain") or meta.get("domain") or "?")
    flaw = str(meta.get("flaw", "-")) if kind == "dpo" else "-"
    inst = meta.get("instance")
    rid = rec.get("id")
    if kind == "unknown":
        report.add(kind, domain, flaw, "fail", rid, "not a planning, SFT or DPO record")
        return
    checkable = inst is not None and domain_module(domain) is not None
    if checkable and instance_problem(domain, inst):
        report.add(kind, domain, flaw, "fail", rid, f"instance does not parse ({instance_problem(domain, inst)})")
        return
    try:
        if kind == "planning":
            if not checkable:
                report.add(kind, domain, flaw, "unchecked")
                return
            errors = check_completion(domain, inst, rec["thinking"], rec["answer"])
            report.add(kind, domain, flaw, "fail" if errors else "pass", rid, "; ".join(errors[:2]))
        elif kind == "sft":
            if not checkable:
                report.add(kind, domain, flaw, "unchecked")
                return
            errors = _check(domain, inst, rec["completion"])
            report.add(kind, domain, flaw, "fail" if errors else "pass", rid, "; ".join(errors[:2]))
        else:
            if " ".join(rec["chosen"].split()) == " ".join(rec["rejected"].split()):
                report.add(kind, domain, flaw, "fail", rid, "rejected equals chosen")
                return
            if not checkable:
                report.add(kind, domain, flaw, "unchecked")
                return
            chosen_errors = _check(domain, inst, rec["chosen"])
            if chosen_errors:
                report.add(kind, domain, flaw, "fail", rid, "chosen fails: " + "; ".join(chosen_errors[:2]))
            elif not _check(domain, inst, rec["rejected"]):
                report.add(kind, domain, flaw, "fail", rid, "rejected passes the checker (flaw not proven)")
            else:
                report.add(kind, domain, flaw, "pass")
    except Exception as e:  # noqa: BLE001 - a malformed instance fails its record, it does not stop the report
        report.add(kind, domain, flaw, "fail", rid, f"instance does not parse ({type(e).__name__}: {e})")


def verify_folder(folder: str | Path, *, progress: bool = False) -> VerifyReport:
    """Re-check every record of a set (folder with records/*.jsonl, or a .jsonl file)."""
    report = VerifyReport(str(folder))
    for _, _, rec in tqdm(iter_set(folder, field="folder"), desc="verify", unit="rec", disable=not progress):
        verify_record(rec, report)
    return report
