"""`datakit mix plan`: what each source can supply after filters, its target, and the epochs that implies.

Availability comes from the hub catalog (before any download), a spec override, or, for local sources,
from running the prepare (+ curate) stages and counting: exact tokens when the tokenizer exists, else
characters / 4 labelled as an estimate. With a [curate] table, a source not yet read is discounted by what
dedup and decontamination are assumed to remove (datakit.sources.catalog.curate_assumption, printed with
its basis as an estimate; the build measures the truth). Past `max_epochs` the planner refuses, with the
numbers and the fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from datakit.contract.accounting import MIXTURE_STEPS  # [curate] steps; the rest are per-source filters
from datakit.contract.layouts import PAIR_LAYOUT
from datakit.errors import UserError
from datakit.sources import catalog
from datakit.sources.formatters import get_formatter
from datakit.spec.mixture import MixtureSpec, SourceSpec
from datakit.spec.sizes import human

CHARS_PER_TOKEN = 4.0
GENERATORS = {"sft": "sft", "dpo": "dpo"}  # format -> the `datakit synth` command that writes such records


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
    tokens_after_curate: int | None = None  # estimate, for sources not read yet when the spec has [curate]
    curate_removed: tuple[float, float] | None = None  # assumed fractions removed by (dedup, decontamination)
    curate_basis: str = ""  # where those fractions come from


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
    sources = {x.name: x for x in spec.source}
    if spec.curate is not None:  # sources not read yet: discount what dedup/decontamination are assumed to remove
        for r in rows:
            if r.tokens_available and not r.basis.startswith(("counted", "chars/4")):
                estimate_curation(spec, sources[r.name], r)
    tgt = targets(spec, {r.name: r.tokens_after_curate if r.tokens_after_curate is not None else r.tokens_available for r in rows})
    total = sum(tgt.values())
    notes: list[str] = []
    for r in rows:
        r.tokens_target = tgt[r.name]
        r.share = r.tokens_target / total if total else 0.0
        src = sources[r.name]
        if src.context is not None:
            notes.append(rows_note(spec, src, r.tokens_target))
        if not r.tokens_available:
            r.status = "unknown" if r.tokens_available is None else "refused"
            r.message = (
                (f"{r.uri} has no records yet: generate them with `datakit synth {GENERATORS.get(src.format, 'planning')} ...`" if r.basis == "not generated yet"
                 else "availability unknown before download: counted at build (set tokens_available to plan now)")
                if r.tokens_available is None
                else "no documents left after filters"
            )
            continue
        if src.filters and not r.basis.startswith(("counted", "chars/4", "override")):
            r.message = "available is before filters (no download yet): the build counts after filters and re-checks epochs"
        supply = r.tokens_after_curate if r.tokens_after_curate is not None else r.tokens_available
        r.epochs = r.tokens_target / supply if supply else float("inf")
        if r.epochs > r.max_epochs + 1e-9:
            cap = int(supply * r.max_epochs)
            r.status = "refused"
            r.message = (
                f"target {human(r.tokens_target)} tokens but only {human(supply)} available ({r.basis}"
                + (", after the curation estimate" if r.tokens_after_curate is not None else "") + ") "
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


def estimate_curation(spec: MixtureSpec, src: SourceSpec, r: SourcePlan) -> None:
    """Discount a source not read yet by what [curate] is assumed to remove (printed as an estimate)."""
    a = catalog.curate_assumption(src.location, src.config) if src.scheme == "hf" else catalog.DEFAULT_CURATE
    dedup = a.dedup if (spec.curate.dedup.exact or spec.curate.dedup.minhash is not None) else 0.0
    decont = a.decontaminate if spec.curate.decontaminate is not None else 0.0
    r.tokens_after_curate = int(r.tokens_available * (1 - dedup) * (1 - decont))
    r.curate_removed = (dedup, decont)
    r.curate_basis = a.basis


def rows_note(spec: MixtureSpec, src: SourceSpec, target: int) -> str:
    """What a target in row tokens means for an SFT/DPO source whose examples are filled with context."""
    seq = spec.mixture.seq_len
    if src.context.max_tokens is not None:
        return f"{src.name}: target {human(target)} tokens counts rows with up to {src.context.max_tokens:,} context tokens each"
    if get_formatter(src.format).layout == PAIR_LAYOUT:
        return (f"{src.name}: target {target:,} tokens = rows filled with context to {seq:,} tokens, 2 per pair: "
                f"{target:,} / (2 x {seq:,}) = ~{target / (2 * seq):,.0f} pairs")
    return (f"{src.name}: target {target:,} tokens = rows filled with context to {seq:,} tokens: "
            f"{target:,} / {seq:,} = ~{target / seq:,.0f} examples")


def refuse_if_needed(plan: MixturePlan, spec_path: str) -> None:
    if plan.refused:
        lines = "; ".join(f"{s.name}: {s.message}" for s in plan.refused)
        raise UserError(f"the plan is infeasible: {lines}", file=spec_path, field="source.tokens", fix="edit the spec as suggested (see docs/deviations.md)")


def format_plan(plan: MixturePlan) -> str:
    curated = any(s.tokens_after_curate is not None for s in plan.sources)
    cur_head = f" {'curated~':>9}" if curated else ""
    head = f"{'source':<20} {'available':>10} {'basis':<9}{cur_head} {'target':>9} {'epochs':>9} {'share':>7}  status"
    lines = [f"mixture {plan.name}: target {human(plan.total_tokens_target)} tokens", head, "-" * len(head)]
    for s in plan.sources:
        avail = human(s.tokens_available) if s.tokens_available is not None else "?"
        ep = f"{s.epochs:,.2f}" if s.epochs is not None else "?"
        basis = s.basis.split(":")[0].split(" (")[0][:9]
        cur = (f" {human(s.tokens_after_curate) if s.tokens_after_curate is not None else '':>9}") if curated else ""
        lines.append(f"{s.name:<20} {avail:>10} {basis:<9}{cur} {human(s.tokens_target):>9} {ep:>9} {s.share:>7.2%}  {s.status}")
        for f in s.filters:
            if f.get("kept_docs_frac") is not None:
                lines.append(
                    f"{'':<20}   filter {f['step']}: kept {f['kept_docs_frac']:.1%} of docs"
                    + (f", {f['kept_tokens_frac']:.1%} of tokens" if f.get("kept_tokens_frac") is not None else "")
                )
    for s in plan.sources:
        if ":" in s.basis:
            lines.append(f"  {s.name}: available = {s.basis}")
    if curated:
        lines.append("  curated~ = available x (1 - dedup) x (1 - decontamination): an ESTIMATE of what [curate] leaves, "
                     "before any download (epochs use it; the build counts the truth)")
        bases: list[str] = []
        for s in plan.sources:
            if s.tokens_after_curate is not None:
                if s.curate_basis not in bases:
                    bases.append(s.curate_basis)
                d, c = s.curate_removed
                lines.append(f"    {s.name}: {s.tokens_available:,} x (1 - {d:g}) x (1 - {c:g}) = {s.tokens_after_curate:,}"
                             f"  [{chr(ord('a') + bases.index(s.curate_basis))}]")
        lines += [f"    [{chr(ord('a') + i)}] {b}" for i, b in enumerate(bases)]
    for s in plan.sources:
        if s.message:
            lines.append(f"  {s.name}: {s.message}")
    lines += [f"  note: {n}" for n in plan.notes]
    return "\n".join(lines)
