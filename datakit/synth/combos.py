"""Deterministic diversity: example `index` under `seed` is one combination domain x task x constraint x scale x persona."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from datakit.synth.planning_spec import PlanningSpec


@dataclass(frozen=True)
class Combo:
    index: int  # seed index: position in this seed's sequence of examples
    domain: str
    task: str
    constraint: str
    scale: str
    persona: str

    def as_meta(self) -> dict:
        d = asdict(self)
        d.pop("index")
        d.pop("domain")
        d.pop("task")
        return d


def record_id(seed: int, index: int) -> str:
    """The idempotent key of a planning example: the same seed and index always give the same id."""
    return f"planning-s{seed}-{index:08d}"


def combo_for(spec: PlanningSpec, seed: int, index: int) -> Combo:
    """The combination for `index`: a fresh RNG seeded by (seed, index), so any index is computed alone."""
    rng = random.Random(f"datakit-planning:{seed}:{index}")
    domain = spec.domain[index % len(spec.domain)]  # domains in turn, the rest drawn
    return Combo(
        index=index,
        domain=domain.name,
        task=rng.choice(domain.tasks),
        constraint=rng.choice(spec.diversity.constraints),
        scale=rng.choice(spec.diversity.scales),
        persona=rng.choice(spec.diversity.personas),
    )


def render_messages(spec: PlanningSpec, combo: Combo) -> list[dict]:
    """The chat messages asking for `combo`."""
    values = dict(domain=combo.domain, task=combo.task, constraint=combo.constraint, scale=combo.scale, persona=combo.persona)
    return [
        {"role": "system", "content": spec.prompt.system.format(**values)},
        {"role": "user", "content": spec.prompt.user.format(**values)},
    ]
