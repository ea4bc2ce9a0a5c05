"""deepmind/math_dataset: templated questions; values are Python bytes literals with the trailing newline,
b'...\\n', as the hub's copy stores them (its loading script wrote raw bytes into a string feature).
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa

from tools.make_samples.common import rng_for, write_parquet, write_readme


DIRS = ["deepmind__math_dataset"]


MATH_DATASET = pa.schema([("question", pa.string()), ("answer", pa.string())])


MATH_MODULES = ("algebra__linear_2d_composed", "arithmetic__mixed")


def _bytes_literal(text: str) -> str:
    """How the hub's math_dataset stores a line: the repr of its raw bytes, newline included."""
    return str((text + "\n").encode("utf-8"))


def _math_row(rng: random.Random, module: str) -> tuple[str, str]:
    if module == "algebra__linear_2d_composed":
        x, y = rng.randint(-9, 9), rng.randint(-9, 9)
        k = rng.randint(2, 6)
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        c = a * x + b * y
        d = rng.randint(1, 9)
        e = k * x - d * y
        return (f"Let t be {k * 3}/3. Solve {a}*x + {b}*y = {c}, t*x - {d}*y = {e} for x.", str(x))
    a, b, c, d = rng.randint(2, 30), rng.randint(2, 30), rng.randint(2, 9), rng.randint(1, 20)
    return (f"Evaluate ({a} - {b}) * {c} + {d}.", str((a - b) * c + d))


def make_math_dataset(rng: random.Random, module: str, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        q, a = _math_row(rng, module)
        rows.append({"question": _bytes_literal(q), "answer": _bytes_literal(a)})
    return rows


def write(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for module in MATH_MODULES:
        for split, n in (("train", 200), ("test", 40)):
            rows = make_math_dataset(rng_for(f"math-{module}-{split}"), module, n)
            write_parquet(rows, MATH_DATASET, out / "deepmind__math_dataset" / module / f"{split}-00000.parquet")
            counts[f"math-{module}-{split}"] = n
    write_readme(out / "deepmind__math_dataset", "deepmind/math_dataset (sample)", [
        f"Modules {', '.join(MATH_MODULES)}, splits train and test. Templated questions with computed answers.",
        "Every value is a Python bytes literal with the trailing newline, b'...\\n', as the hub's copy stores them.",
    ])
    return counts
