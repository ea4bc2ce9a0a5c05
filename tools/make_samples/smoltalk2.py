"""HuggingFaceTB/smoltalk2 (Mid): chat `messages` with a <think>...</think> reasoning trace, answers computed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa

from tools.make_samples.common import rng_for, write_parquet, write_readme


DIRS = ["HuggingFaceTB__smoltalk2"]


SMOLTALK2_MID = pa.schema([
    ("messages", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
    ("source", pa.string()),
])


SMOLTALK2_SPLIT = "OpenThoughts3_1.2M"


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


def write(out: Path) -> dict[str, int]:
    rows = make_smoltalk2_mid(rng_for("smoltalk2-mid"), 120)
    write_parquet(rows, SMOLTALK2_MID, out / "HuggingFaceTB__smoltalk2" / "Mid" / f"{SMOLTALK2_SPLIT}-00000.parquet")
    write_readme(out / "HuggingFaceTB__smoltalk2", "HuggingFaceTB/smoltalk2 (sample)", [
        f"Config Mid, split {SMOLTALK2_SPLIT}. Chat `messages` (content, role): a user problem and an assistant answer",
        "that opens with a <think>...</think> trace, as SmolLM3's mid-training reasoning data; answers computed.",
    ])
    return {"smoltalk2-mid": len(rows)}
