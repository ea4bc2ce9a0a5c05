"""google/boolq: templated passages about towns with computed yes/no answers.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa

from tools.make_samples.common import rng_for, write_parquet, write_readme


DIRS = ["google__boolq"]


BOOLQ = pa.schema([("question", pa.string()), ("answer", pa.bool_()), ("passage", pa.string())])


TOWNS = ["Ashford", "Brookvale", "Cedar Falls", "Dunmore", "Elmstead", "Fairhaven", "Glenrock", "Harlow"]


RIVERS = ["the Avon", "the Tamar", "the Wye", "the Esk", "the Ouse", "the Eden"]


def make_boolq(rng: random.Random, n: int) -> list[dict]:
    """Passages with a few computed facts; yes/no questions about them (about half true)."""
    rows = []
    for _ in range(n):
        town, river = rng.choice(TOWNS), rng.choice(RIVERS)
        founded, pop, bridges = rng.randint(1100, 1900), rng.randint(800, 90_000), rng.randint(1, 9)
        passage = (f"{town} is a market town on {river}. It was founded in {founded} and had a population of "
                   f"{pop:,} at the last census. The town has {bridges} bridge{'s' if bridges > 1 else ''} across the river, "
                   f"the oldest of which dates from {founded + rng.randint(20, 300)}.")
        kind = rng.randrange(3)
        if kind == 0:
            limit = rng.choice([1000, 5000, 10_000, 50_000])
            question, answer = f"does {town.lower()} have more than {limit:,} inhabitants", pop > limit
        elif kind == 1:
            year = rng.randint(1100, 1900)
            question, answer = f"was {town.lower()} founded before {year}", founded < year
        else:
            k = rng.randint(1, 9)
            question, answer = f"are there {k} bridges in {town.lower()}", k == bridges
        rows.append({"question": question, "answer": answer, "passage": passage})
    return rows


def write(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for split, n in (("train", 200), ("validation", 60)):
        rows = make_boolq(rng_for(f"boolq-{split}"), n)
        write_parquet(rows, BOOLQ, out / "google__boolq" / "default" / f"{split}-00000.parquet")
        counts[f"boolq-{split}"] = n
    write_readme(out / "google__boolq", "google/boolq (sample)", [
        "Splits train and validation. Templated passages about towns with computed yes/no answers; `answer` is",
        "a bool and questions are lower case without a question mark, as upstream.",
    ])
    return counts
