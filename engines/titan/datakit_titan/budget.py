"""A phase's token budget against its mixture.

    [phase]
    tokens = "mixture"                       # one pass over the built mixture: its manifest's total_tokens
    mixture_spec = "mixtures/midtrain.toml"  # sizes tokens = "mixture" before the mixture is built
    max_epochs = 1.0                         # passes over the mixture a phase may ask for

    [[stage]]
    seq_len = "mixture"                      # the mixture's seq_len (its manifest's, else its spec's)

`tokens = "mixture"` is read from `<mixture>/manifest.json` when the mixture is built (exact), else from
the spec that builds it (its `total_tokens`, or the planner's sum of its sources: an estimate). A phase
asking more than the mixture's total x `max_epochs` is refused before training starts (`check_budget`).
`seq_len = "mixture"` is read the same way, so a phase file need not repeat the mixture's context length.
"""

from __future__ import annotations

from pathlib import Path

from datakit.errors import UserError


def _find(rel: str, phase_path: Path) -> Path | None:
    """`rel` from the cwd (how phase paths are read), else from a folder above the phase file (the repo root)."""
    p = Path(rel)
    if p.is_absolute() or p.exists():
        return p if p.exists() else None
    for parent in Path(phase_path).resolve().parents:
        if (parent / rel).exists():
            return parent / rel
    return None


def _mixture_source(phase, field: str, what: str):
    """("manifest", Manifest, where) of the phase's built mixture, else ("spec", MixtureSpec, where) of its spec."""
    info = phase.phase
    manifest = Path(info.mixture) / "manifest.json"
    if manifest.exists():
        from datakit.contract import load_manifest

        return "manifest", load_manifest(info.mixture), str(manifest)
    spec_path = _find(info.mixture_spec, phase.path) if info.mixture_spec else None
    if spec_path is None:
        example = 'tokens = "50B"' if what == "tokens" else "seq_len = 2048"
        raise UserError(
            f"{what} = \"mixture\" needs the built mixture ({manifest} does not exist)"
            + (f" or its spec ({info.mixture_spec} not found)" if info.mixture_spec else ""),
            file=phase.path, field=field,
            fix="build the mixture (`datakit mix build <spec>`), set phase.mixture_spec to the spec that builds it, "
            f"or give a number (e.g. {example})",
        )
    from datakit.spec import load_spec

    return "spec", load_spec(spec_path), info.mixture_spec


def mixture_total(phase) -> tuple[int, str]:
    """(tokens, where the figure comes from) of the phase's mixture: its manifest, else its spec."""
    kind, found, where = _mixture_source(phase, "phase.tokens", "tokens")
    if kind == "manifest":
        return int(found.total_tokens), f"the built mixture's total ({where})"
    if found.mixture.total_tokens:
        return int(found.mixture.total_tokens), f"[mixture] total_tokens of {where} (not built yet)"
    from datakit.mix.plan import make_plan

    return int(make_plan(found).total_tokens_target), f"the planned sum of {where}'s sources (not built yet: an estimate)"


def resolve_seq_len(phase) -> None:
    """Turn each stage's `seq_len = "mixture"` into the mixture's seq_len (in place)."""
    for i, stage in enumerate(phase.stage):
        if stage.seq_len == "mixture":
            kind, found, _ = _mixture_source(phase, f"stage.{i}.seq_len", "seq_len")
            stage.seq_len = int(found.seq_len if kind == "manifest" else found.mixture.seq_len)


def resolve_tokens(phase) -> None:
    """Turn `tokens = "mixture"` into a number (in place) and record where it came from in `phase.tokens_basis`."""
    if phase.phase.tokens == "mixture":
        phase.phase.tokens, phase.tokens_basis = mixture_total(phase)
    else:
        phase.tokens_basis = "phase.tokens"


def check_budget(phase, manifest) -> str:
    """Refuse a phase that asks more than the mixture holds x max_epochs; return a one-line note."""
    total = int(manifest.total_tokens)
    asked = int(phase.phase.tokens)
    cap = phase.phase.max_epochs
    passes = asked / total if total else float("inf")
    if passes > cap + 1e-9:
        raise UserError(
            f"the phase asks {asked:,} tokens but the mixture {phase.phase.mixture} holds {total:,}: "
            f"{passes:,.2f} passes > max_epochs {cap:g}",
            file=phase.path, field="phase.tokens",
            fix=f"set tokens <= {int(total * cap):,} (or tokens = \"mixture\" for one pass), build a larger mixture, "
            "or raise phase.max_epochs",
        )
    return f"trains {asked:,} of the mixture's {total:,} tokens ({passes:.2f} passes; max_epochs {cap:g})"
