"""Samples of the seed plan's extra mid-train sets and of the HellaSwag eval set (called by make_samples).

Schemas are the upstream ones (the datasets' cards / parquet conversions, docs/samples.md); the values are
templated with a seeded RNG and every answer is computed, as in make_samples.py. Nothing here is upstream data.

    google/boolq                  question: string, answer: bool, passage: string
    deepmind/math_dataset         question: string, answer: string; the hub's values are Python bytes
                                  literals with the trailing newline, b'...\\n' (the loading script wrote the
                                  raw bytes of the original text files into a string feature)
    HuggingFaceTB/smoltalk2 (Mid) messages: list<struct<content: string, role: string>>, source: string
    Rowan/hellaswag               ind: int32, activity_label, ctx_a, ctx_b, ctx, endings: list<string>,
                                  source_id, split, split_type, label (the right ending's index as a string)
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa

BOOLQ = pa.schema([("question", pa.string()), ("answer", pa.bool_()), ("passage", pa.string())])
MATH_DATASET = pa.schema([("question", pa.string()), ("answer", pa.string())])
SMOLTALK2_MID = pa.schema([
    ("messages", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
    ("source", pa.string()),
])
HELLASWAG = pa.schema([
    ("ind", pa.int32()), ("activity_label", pa.string()), ("ctx_a", pa.string()), ("ctx_b", pa.string()),
    ("ctx", pa.string()), ("endings", pa.list_(pa.string())), ("source_id", pa.string()), ("split", pa.string()),
    ("split_type", pa.string()), ("label", pa.string()),
])

MATH_MODULES = ("algebra__linear_2d_composed", "arithmetic__mixed")
SMOLTALK2_SPLIT = "OpenThoughts3_1.2M"
GENERATED_DIRS = ["google__boolq", "deepmind__math_dataset", "HuggingFaceTB__smoltalk2", "Rowan__hellaswag"]

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


def make_smoltalk2_mid(rng: random.Random, n: int) -> list[dict]:
    """Reasoning traces in smoltalk2's chat schema: a user problem, an assistant `<think>...</think>` answer."""
    rows = []
    for _ in range(n):
        w, h, cost = rng.randint(3, 30), rng.randint(3, 30), rng.randint(2, 15)
        area = w * h
        total = area * cost
        user = f"A floor is {w} m by {h} m. Tiles cost ${cost} per square metre. What do the tiles for the whole floor cost?"
        think = (f"The floor is a rectangle, so its area is {w} * {h} = {area} square metres.\n"
                 f"Each square metre costs ${cost}, so the tiles cost {area} * {cost} = {total} dollars.\n"
                 f"Check: {total} / {cost} = {area} = {w} * {h}. Correct.")
        assistant = f"<think>\n{think}\n</think>\n\nThe tiles cost ${total}."
        rows.append({"messages": [{"content": user, "role": "user"}, {"content": assistant, "role": "assistant"}],
                     "source": "OpenThoughts3-sample"})
    return rows


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


def generate(out: Path, rng_for, write_parquet, write_readme) -> dict[str, int]:
    """Write the samples under `out` with make_samples' helpers (seeded RNG per name, parquet, README)."""
    counts: dict[str, int] = {}
    for split, n in (("train", 200), ("validation", 60)):
        rows = make_boolq(rng_for(f"boolq-{split}"), n)
        write_parquet(rows, BOOLQ, out / "google__boolq" / "default" / f"{split}-00000.parquet")
        counts[f"boolq-{split}"] = n
    write_readme(out / "google__boolq", "google/boolq (sample)", [
        "Splits train and validation. Templated passages about towns with computed yes/no answers; `answer` is",
        "a bool and questions are lower case without a question mark, as upstream.",
    ])
    for module in MATH_MODULES:
        for split, n in (("train", 200), ("test", 40)):
            rows = make_math_dataset(rng_for(f"math-{module}-{split}"), module, n)
            write_parquet(rows, MATH_DATASET, out / "deepmind__math_dataset" / module / f"{split}-00000.parquet")
            counts[f"math-{module}-{split}"] = n
    write_readme(out / "deepmind__math_dataset", "deepmind/math_dataset (sample)", [
        f"Modules {', '.join(MATH_MODULES)}, splits train and test. Templated questions with computed answers.",
        "Every value is a Python bytes literal with the trailing newline, b'...\\n', as the hub's copy stores them.",
    ])
    rows = make_smoltalk2_mid(rng_for("smoltalk2-mid"), 120)
    write_parquet(rows, SMOLTALK2_MID, out / "HuggingFaceTB__smoltalk2" / "Mid" / f"{SMOLTALK2_SPLIT}-00000.parquet")
    counts["smoltalk2-mid"] = len(rows)
    write_readme(out / "HuggingFaceTB__smoltalk2", "HuggingFaceTB/smoltalk2 (sample)", [
        f"Config Mid, split {SMOLTALK2_SPLIT}. Chat `messages` (content, role): a user problem and an assistant answer",
        "that opens with a <think>...</think> trace, as SmolLM3's mid-training reasoning data; answers computed.",
    ])
    rows = make_hellaswag(rng_for("hellaswag-validation"), 60, "val")
    write_parquet(rows, HELLASWAG, out / "Rowan__hellaswag" / "default" / "validation-00000.parquet")
    counts["hellaswag-validation"] = len(rows)
    write_readme(out / "Rowan__hellaswag", "Rowan/hellaswag (sample)", [
        "Split validation (an eval set: decontamination reads it). `label` is the right ending's index as a string.",
    ])
    return counts
