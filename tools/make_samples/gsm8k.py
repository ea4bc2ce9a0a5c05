"""openai/gsm8k: templated word problems with calculator annotations, every number computed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa

from tools.make_samples.common import rng_for, write_parquet, write_readme


DIRS = ["openai__gsm8k"]


GSM8K = pa.schema([("question", pa.string()), ("answer", pa.string())])


NAMES = ["Ava", "Liam", "Noah", "Mia", "Zoe", "Omar", "Priya", "Chen", "Sofia", "Mateo", "Amara", "Kenji", "Lena", "Ravi", "Nora", "Tariq"]


ITEMS = [("apples", 2), ("pencils", 1), ("notebooks", 3), ("stickers", 1), ("cupcakes", 4), ("marbles", 1), ("books", 9), ("tickets", 6)]


def _gsm8k_problem(rng: random.Random) -> tuple[str, str, int]:
    """(question, gsm8k-style answer with <<calc>> annotations and '#### N', final number)."""
    kind = rng.randrange(6)
    name, other = rng.sample(NAMES, 2)
    item, price = rng.choice(ITEMS)
    if kind == 0:
        a, b, c = rng.randint(5, 40), rng.randint(2, 9), rng.randint(1, 15)
        total = a + a * b
        left = total - c
        q = f"{name} has {a} {item}. {other} has {b} times as many {item} as {name}. {other} gives away {c} of them. How many {item} do {name} and {other} have together now?"
        ans = (
            f"{other} has {a} * {b} = <<{a}*{b}={a * b}>>{a * b} {item}.\n"
            f"Together they had {a} + {a * b} = <<{a}+{a * b}={total}>>{total} {item}.\n"
            f"After giving away {c}, they have {total} - {c} = <<{total}-{c}={left}>>{left} {item}.\n#### {left}"
        )
        return q, ans, left
    if kind == 1:
        n, p, bill = rng.randint(2, 12), price * rng.randint(1, 5), 0
        cost = n * p
        bill = ((cost // 20) + 1) * 20
        change = bill - cost
        q = f"{name} buys {n} {item} that cost ${p} each and pays with ${bill}. How much change does {name} get?"
        ans = f"The {item} cost {n} * {p} = $<<{n}*{p}={cost}>>{cost}.\nThe change is {bill} - {cost} = $<<{bill}-{cost}={change}>>{change}.\n#### {change}"
        return q, ans, change
    if kind == 2:
        speed, hours, extra = rng.randint(30, 70), rng.randint(2, 6), rng.randint(10, 60)
        d1 = speed * hours
        total = d1 + extra
        q = f"A train travels at {speed} miles per hour for {hours} hours, then {extra} more miles to the station. How many miles does it travel in total?"
        ans = f"In {hours} hours it travels {speed} * {hours} = <<{speed}*{hours}={d1}>>{d1} miles.\nAdding the last part gives {d1} + {extra} = <<{d1}+{extra}={total}>>{total} miles.\n#### {total}"
        return q, ans, total
    if kind == 3:
        per_day, days, share = rng.randint(3, 15), rng.randint(4, 14), rng.choice([2, 4, 5, 10])
        total = per_day * days * share
        q = f"{name} reads {per_day * share} pages every day for {days} days. {name} shares the pages equally among {share} study groups. How many pages does each group get?"
        t = per_day * share * days
        ans = f"{name} reads {per_day * share} * {days} = <<{per_day * share}*{days}={t}>>{t} pages.\nEach group gets {t} / {share} = <<{t}/{share}={t // share}>>{t // share} pages.\n#### {t // share}"
        _ = total
        return q, ans, t // share
    if kind == 4:
        base, pct = rng.randint(1, 15) * 20, rng.choice([10, 20, 25, 50])  # multiple of 20: whole-dollar discounts
        off = base * pct // 100
        final = base - off
        q = f"A jacket costs ${base}. The store offers a {pct}% discount. What is the price of the jacket after the discount?"
        ans = f"The discount is {base} * {pct} / 100 = $<<{base}*{pct}/100={off}>>{off}.\nThe new price is {base} - {off} = $<<{base}-{off}={final}>>{final}.\n#### {final}"
        return q, ans, final
    w, l = rng.randint(3, 25), rng.randint(3, 25)
    area, per = w * l, 2 * (w + l)
    q = f"{name} fences a rectangular garden that is {w} meters wide and {l} meters long. How many meters of fence are needed, plus one extra meter for every 10 square meters of garden area, rounded down?"
    extra = area // 10
    total = per + extra
    ans = (
        f"The perimeter is 2 * ({w} + {l}) = <<2*({w}+{l})={per}>>{per} meters.\n"
        f"The area is {w} * {l} = <<{w}*{l}={area}>>{area} square meters, so {area} // 10 = <<{area}//10={extra}>>{extra} extra meters.\n"
        f"In total {per} + {extra} = <<{per}+{extra}={total}>>{total} meters.\n#### {total}"
    )
    return q, ans, total


def make_gsm8k(n: int, split: str) -> list[dict]:
    rng = rng_for(f"gsm8k-{split}")
    return [{"question": q, "answer": a} for q, a, _ in (_gsm8k_problem(rng) for _ in range(n))]


def write(out: Path) -> dict[str, int]:
    counts = {}
    gsm = out / "openai__gsm8k" / "main"
    for split, n in (("train", 400), ("test", 100)):
        rows = make_gsm8k(n, split)
        write_parquet(rows, GSM8K, gsm / f"{split}-00000.parquet")
        counts[f"gsm8k-{split}"] = n
    write_readme(out / "openai__gsm8k", "openai/gsm8k (sample)", [
        "Config main, splits train and test. Templated word problems; answers use gsm8k's <<a*b=c>> calculator",
        "annotations and end with '#### N'. Every number is computed.",
    ])
    return counts
