"""allenai/ai2_arc: templated science and arithmetic multiple-choice questions.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tools.make_samples.common import rng_for, write_parquet, write_readme


DIRS = ["allenai__ai2_arc"]


ARC = pa.schema(
    [
        ("id", pa.string()),
        ("question", pa.string()),
        ("choices", pa.struct([("text", pa.list_(pa.string())), ("label", pa.list_(pa.string()))])),
        ("answerKey", pa.string()),
    ]
)


ARC_FACTS = [
    ("Which unit is used to measure the mass of an object?", "kilogram", ["meter", "second", "liter"]),
    ("Which of these is a source of renewable energy?", "sunlight", ["coal", "natural gas", "oil"]),
    ("What is the main gas that plants take in for photosynthesis?", "carbon dioxide", ["oxygen", "nitrogen", "helium"]),
    ("Which state of matter has a definite volume but no definite shape?", "liquid", ["solid", "gas", "plasma"]),
    ("Which planet is closest to the Sun?", "Mercury", ["Venus", "Earth", "Mars"]),
    ("What force pulls objects toward the center of Earth?", "gravity", ["friction", "magnetism", "tension"]),
    ("Which tool is best for measuring the temperature of water?", "thermometer", ["balance", "ruler", "graduated cylinder"]),
    ("Water freezes at what temperature in degrees Celsius?", "0", ["100", "32", "-10"]),
    ("Which organ pumps blood through the human body?", "heart", ["lungs", "stomach", "liver"]),
    ("What causes day and night on Earth?", "Earth rotating on its axis", ["Earth orbiting the Sun", "the Moon's phases", "the tilt of the Sun"]),
    ("Which material is a good conductor of electricity?", "copper", ["rubber", "wood", "glass"]),
    ("What is the boiling point of water at sea level in degrees Celsius?", "100", ["50", "212", "0"]),
]


def make_arc(n: int, name: str) -> list[dict]:
    rng = rng_for(name)
    hard = "Challenge" in name
    rows = []
    for i in range(n):
        if i % 3 == 0:
            q, right, wrong = ARC_FACTS[rng.randrange(len(ARC_FACTS))]
            options = [right, *wrong]
        else:
            a, b = rng.randint(2, 30), rng.randint(2, 12)
            if hard:
                q = f"A plant grows {a} millimeters per day for {b} days and is then cut back by {a} millimeters. How much did it grow in total, in millimeters?"
                right_v = a * b - a
            else:
                q = f"A student records {a} birds at a feeder each hour for {b} hours. How many birds are recorded in total?"
                right_v = a * b
            right = str(right_v)
            wrong_vals = sorted({right_v + a, max(0, right_v - b), right_v + b + 1, a + b} - {right_v})[:3]
            options = [right, *map(str, wrong_vals)]
            while len(options) < 4:
                options.append(str(right_v + 7 * len(options)))
        order = list(range(len(options)))
        rng.shuffle(order)
        texts = [options[j] for j in order]
        labels = ["1", "2", "3", "4"] if i % 17 == 5 else ["A", "B", "C", "D"]
        key = labels[order.index(0)]
        rows.append({"id": f"DatakitSample_{name}_{i:05d}", "question": q, "choices": {"text": texts, "label": labels}, "answerKey": key})
    return rows


def write(out: Path) -> dict[str, int]:
    counts = {}
    for cfg, sizes in (("ARC-Challenge", (("train", 150), ("test", 80))), ("ARC-Easy", (("train", 200), ("test", 80)))):
        for split, n in sizes:
            rows = make_arc(n, f"{cfg}-{split}")
            write_parquet(rows, ARC, out / "allenai__ai2_arc" / cfg / f"{split}-00000.parquet")
            counts[f"{cfg}-{split}"] = n
    write_readme(out / "allenai__ai2_arc", "allenai/ai2_arc (sample)", [
        "Configs ARC-Challenge and ARC-Easy, splits train and test. Templated science and arithmetic questions;",
        "`choices` is a struct of two lists (text, label); a few rows use numeric labels 1-4, as upstream does.",
    ])
    return counts
