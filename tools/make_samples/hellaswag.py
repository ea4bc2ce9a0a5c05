"""Rowan/hellaswag (validation; an eval set that decontamination reads): templated activities and endings.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa

from tools.make_samples.common import rng_for, write_parquet, write_readme


DIRS = ["Rowan__hellaswag"]


HELLASWAG = pa.schema([
    ("ind", pa.int32()), ("activity_label", pa.string()), ("ctx_a", pa.string()), ("ctx_b", pa.string()),
    ("ctx", pa.string()), ("endings", pa.list_(pa.string())), ("source_id", pa.string()), ("split", pa.string()),
    ("split_type", pa.string()), ("label", pa.string()),
])


ACTIVITIES = [
    ("Making a sandwich", "{name} lays {n} slices of bread on a board.", "{name}",
     ["spreads butter on {n} slices and adds cheese.", "throws the bread into the river.", "paints the bread blue with a brush.", "sings the bread a song and leaves."]),
    ("Washing a car", "{name} fills {n} buckets with soapy water next to a car.", "{name}",
     ["scrubs the roof with a sponge from bucket {n}.", "drives the buckets down the road.", "plants the sponge in a pot.", "reads the buckets a newspaper."]),
    ("Tying shoes", "{name} sits on step {n} and holds two shoelaces.", "{name}",
     ["crosses the laces and pulls a loop through.", "eats the laces for lunch.", "mails the shoe to {n} friends.", "throws the step over the fence."]),
]


NAMES = ["Ava", "Liam", "Noah", "Mia", "Zoe", "Omar", "Priya", "Chen", "Sofia", "Mateo"]


def make_hellaswag(rng: random.Random, n: int, split: str) -> list[dict]:
    rows = []
    for i in range(n):
        label, ctx_a, who, endings = ACTIVITIES[i % len(ACTIVITIES)]
        name, k = rng.choice(NAMES), rng.randint(2, 60)
        ctx_a, ctx_b = ctx_a.format(name=name, n=k), who.format(name=name)
        endings = [e.format(n=k) for e in endings]
        right = endings[0]
        rng.shuffle(endings)
        rows.append({
            "ind": 10_000 + i, "activity_label": label, "ctx_a": ctx_a, "ctx_b": ctx_b, "ctx": f"{ctx_a} {ctx_b}",
            "endings": endings, "source_id": f"sample~v_{i:05d}", "split": split, "split_type": "indomain",
            "label": str(endings.index(right)),
        })
    return rows


def write(out: Path) -> dict[str, int]:
    rows = make_hellaswag(rng_for("hellaswag-validation"), 60, "val")
    write_parquet(rows, HELLASWAG, out / "Rowan__hellaswag" / "default" / "validation-00000.parquet")
    write_readme(out / "Rowan__hellaswag", "Rowan/hellaswag (sample)", [
        "Split validation (an eval set: decontamination reads it). `label` is the right ending's index as a string.",
    ])
    return {"hellaswag-validation": len(rows)}
