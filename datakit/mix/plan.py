"""`datakit mix plan`: what each source can supply after filters, its target, and the epochs that implies.

Availability comes from the hub catalog (before any download), a spec override, or, for local sources,
from running the prepare (+ curate) stages and counting: exact tokens when the tokenizer exists, else
characters / 4 labelled as an estimate. Past `max_epochs` the planner refuses, with the numbers and the fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from datakit.errors import UserError
from datakit.sources import catalog
from datakit.spec.mixture import MixtureSpec, SourceSpec
from datakit.spec.sizes import human

CHARS_PER_TOKEN = 4.0
MIXTURE_STEPS = {"exact_dedup", "minhash_dedup", "decontaminate"}  # [curate] steps; the rest are per-source filters  # only for the estimate before a tokenizer exists; labelled as such


@dataclass
class SourcePlan:
    name: str
    uri: str
    docs_available: int | None
    tokens_available: int | None
    basis: str  # card | estimate | override | counted | counted (chars/4 estimate) | unknown
    tokens_target: int = 0
    epochs: float | None = None
    share: float = 0.0
    max_epochs: float = 4.0
    status: str = "ok"  # ok | refused | unknown
    message: str = ""
    filters: list[dict] = field(default_factory=list)  # per filter step: docs/tokens in/out, kept fractions


@dataclass
class MixturePlan:
    name: str
    total_tokens_target: int
    total_tokens_spec: int | None
    sources: list[SourcePlan]
    notes: list[str]

    @property
    def refused(self) -> list[SourcePlan]:
        return [s for s in self.sources if s.status == "refused"]

    def to_dict(self) -> dict:
        return {**asdict(self), "refused": [s.name for s in self.refused]}


def catalog_availability(src: SourceSpec) -> tuple[int | None, int | None, str]:
    if src.tokens_available is not None:
        return src.docs_available, src.tokens_available, "override"
    if src.scheme == "hf":
        known = catalog.lookup(src.location, src.config, src.split)
        if known:
            return known.docs, known.tokens, known.basis
        return None, None, "unknown"
    if src.scheme == "synth":
        return None, None, "not generated yet"
    return None, None, "unknown"


def targets(spec: MixtureSpec, available: dict[str, int | None]) -> dict[str, int]:
    """Token target per source: explicit tokens, "all" (one pass), or weight x total_tokens."""
    out: dict[str, int] = {}
    weights = sum(s.weight for s in spec.source if s.weight is not None)
    fixed = sum(s.tokens if isinstance(s.tokens, int) else (available.get(s.name) or 0) for s in spec.source if s.tokens is not None)
    for s in spec.source:
        if s.tokens == "all":
            out[s.name] = available.get(s.name) or 0
        elif s.tokens is not None:
            out[s.name] = s.tokens
        else:  # weights share what explicit targets leave of total_tokens
            left = max(0, spec.mixture.total_tokens - fixed)
            out[s.name] = int(round(left * s.weight / weights))
    return out


def make_plan(spec: MixtureSpec, counted: dict[str, tuple[int, int, str]] | None = None, filter_stats: dict | None = None) -> MixturePlan:
    """Combine availability (catalog or counted) with targets; mark refusals past max_epochs."""
    counted = counted or {}
    rows: list[SourcePlan] = []
    for s in spec.source:
        docs, tokens, basis = counted.get(s.name) or catalog_availability(s)
        rows.append(SourcePlan(s.name, s.uri, docs, tokens, basis, max_epochs=s.max_epochs, filters=(filter_stats or {}).get(s.name, [])))
    tgt = targets(spec, {r.name: r.tokens_available for r in rows})
    total = sum(tgt.values())
    notes: list[str] = []
    for r in rows:
        r.tokens_target = tgt[r.name]
        r.share = r.tokens_target / total if total else 0.0
        if not r.tokens_available:
            r.status = "unknown" if r.tokens_available is None else "refused"
            r.message = (
                (f"{r.uri} has no records yet: generate them with `datakit synth planning ...`" if r.basis == "not generated yet"
                 else "availability unknown before download: counted at build (set tokens_available to plan now)")
                if r.tokens_available is None
                else "no documents left after filters"
            )
            continue
        spec_src = next(x for x in spec.source if x.name == r.name)
        if spec_src.filters and r.basis not in ("counted",) and not r.basis.startswith("chars/4"):
            r.message = "available is before filters (no download yet): the build counts after filters and re-checks epochs"
        r.epochs = r.tokens_target / r.tokens_available
        if r.epochs > r.max_epochs + 1e-9:
            cap = int(r.tokens_available * r.max_epochs)
            r.status = "refused"
            r.message = (
                f"target {human(r.tokens_target)} tokens but only {human(r.tokens_available)} available ({r.basis}) "
                f"= {r.epochs:,.1f} epochs > max_epochs {r.max_epochs:g}; set tokens <= {human(cap)} "
                f"({r.max_epochs:g} epochs) and move the rest to another source, or raise max_epochs"
            )
        for f in r.filters:
            kept = f.get("kept_docs_frac")
            if f.get("step") in MIXTURE_STEPS:
                continue  # dedup/decontamination keeping everything of a clean source is the expected outcome
            if kept is not None and (kept > 0.99 or kept < 0.01):
                notes.append(f"{r.name}: filter {f['step']!r} keeps {kept:.1%} of documents: it "
                             + ("does almost nothing; check its threshold" if kept > 0.99 else "removes almost everything"))
    if spec.mixture.total_tokens and abs(total - spec.mixture.total_tokens) > 0.01 * spec.mixture.total_tokens:
        notes.append(
            f"sources add up to {human(total)} tokens, [mixture] total_tokens says {human(spec.mixture.total_tokens)} "
            f"({(total - spec.mixture.total_tokens) / spec.mixture.total_tokens:+.1%})"
        )
    return MixturePlan(spec.mixture.name, total, spec.mixture.total_tokens, rows, notes)


def refuse_if_needed(plan: MixturePlan, spec_path: str) -> None:
    if plan.refused:
        lines = "; ".join(f"{s.name}: {s.message}" for s in plan.refused)
        raise UserError(f"the plan is infeasible: {lines}", file=spec_path, field="source.tokens", fix="edit the spec as suggested (see docs/deviations.md)")


def format_plan(plan: MixturePlan) -> str:
    head = f"{'source':<20} {'available':>10} {'basis':<9} {'target':>9} {'epochs':>9} {'share':>7}  status"
    lines = [f"mixture {plan.name}: target {human(plan.total_tokens_target)} tokens", head, "-" * len(head)]
    for s in plan.sources:
        avail = human(s.tokens_available) if s.tokens_available is not None else "?"
        ep = f"{s.epochs:,.2f}" if s.epochs is not None else "?"
        basis = s.basis.split(":")[0].split(" (")[0][:9]
        lines.append(f"{s.name:<20} {avail:>10} {basis:<9} {human(s.tokens_target):>9} {ep:>9} {s.share:>7.2%}  {s.status}")
        for f in s.filters:
            if f.get("kept_docs_frac") is not None:
                lines.append(
                    f"{'':<20}   filter {f['step']}: kept {f['kept_docs_frac']:.1%} of docs"
                    + (f", {f['kept_tokens_frac']:.1%} of tokens" if f.get("kept_tokens_frac") is not None else "")
                )
    for s in plan.sources:
        if ":" in s.basis:
            lines.append(f"  {s.name}: available = {s.basis}")
    for s in plan.sources:
        if s.message:
            lines.append(f"  {s.name}: {s.message}")
    lines += [f"  note: {n}" for n in plan.notes]
    return "\n".join(lines)
