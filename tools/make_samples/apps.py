"""codeparrot/apps (the hub's parquet-mirror schema): programming problems with real, runnable solutions.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pyarrow as pa

from tools.make_samples.common import rng_for, write_parquet, write_readme


DIRS = ["codeparrot__apps"]


APPS = pa.schema(
    [
        ("problem_id", pa.int64()),
        ("question", pa.string()),
        ("solutions", pa.string()),  # JSON list of source strings, or "" when the problem has none
        ("input_output", pa.string()),  # JSON {"inputs": [...], "outputs": [...], ["fn_name"]} or ""
        ("difficulty", pa.string()),
        ("url", pa.string()),
        ("starter_code", pa.string()),
    ]
)


def _fib(k: int) -> int:
    a, b = 1, 1
    for _ in range(k - 1):
        a, b = b, a + b
    return a


# Example generators: (rng, bound) -> (stdin text, expected stdout text)
def _io_sum(rng: random.Random, n: int) -> tuple[str, str]:
    xs = [rng.randint(-50, 50) for _ in range(n)]
    return " ".join(map(str, xs)) + "\n", f"{sum(xs)}\n"


def _io_reverse(rng: random.Random, n: int) -> tuple[str, str]:
    w = "".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, n)))
    return w + "\n", w[::-1] + "\n"


def _io_fib(rng: random.Random, n: int) -> tuple[str, str]:
    k = rng.randint(1, n)
    return f"{k}\n", f"{_fib(k)}\n"


def _io_even(rng: random.Random, n: int) -> tuple[str, str]:
    xs = [rng.randint(0, 99) for _ in range(n)]
    return " ".join(map(str, xs)) + "\n", f"{sum(1 for x in xs if x % 2 == 0)}\n"


def _io_gcd(rng: random.Random, n: int) -> tuple[str, str]:
    a, b = rng.randint(1, n), rng.randint(1, n)
    return f"{a} {b}\n", f"{math.gcd(a, b)}\n"


# (statement template, solutions, example generator)
APPS_PROBLEMS = [
    ("Given a list of {n} integers on one line, print their sum.",
     ["print(sum(map(int, input().split())))\n", "total = 0\nfor x in input().split():\n    total += int(x)\nprint(total)\n"],
     _io_sum),
    ("Read a word of at most {n} letters and print it reversed.", ["print(input()[::-1])\n"], _io_reverse),
    ("Given an integer k (1 <= k <= {n}), print the k-th Fibonacci number, with F(1) = F(2) = 1.",
     ["k = int(input())\na, b = 1, 1\nfor _ in range(k - 1):\n    a, b = b, a + b\nprint(a)\n"], _io_fib),
    ("Given {n} integers, print how many of them are even.",
     ["print(sum(1 for x in input().split() if int(x) % 2 == 0))\n"], _io_even),
    ("Given two integers a and b (1 <= a, b <= {n}), print their greatest common divisor.",
     ["import math\na, b = map(int, input().split())\nprint(math.gcd(a, b))\n"], _io_gcd),
]


def make_apps(n: int, split: str) -> list[dict]:
    rng = rng_for(f"apps-{split}")
    rows = []
    base_id = 0 if split == "train" else 5000
    for i in range(n):
        kind = i % (len(APPS_PROBLEMS) + 1)
        difficulty = ["introductory", "interview", "competition"][i % 3]
        if kind == len(APPS_PROBLEMS):
            # call-based problem with starter code (LeetCode style)
            k = rng.randint(2, 60)
            question = f"Write a function that returns the list of the first n multiples of {k}, starting at {k}.\n\nExample: n = 3 -> {[k, 2 * k, 3 * k]}"
            starter = "class Solution:\n    def multiples(self, n: int) -> list:\n        "
            sols = [f"class Solution:\n    def multiples(self, n: int) -> list:\n        return [{k} * i for i in range(1, n + 1)]\n"]
            ns = [rng.randint(1, 6) for _ in range(3)]
            io_ = {"fn_name": "multiples", "inputs": [[m] for m in ns], "outputs": [[[k * j for j in range(1, m + 1)]] for m in ns]}
        else:
            tmpl, sols, gen = APPS_PROBLEMS[kind]
            bound = rng.randint(5, 30)
            question = f"-----Problem-----\n{tmpl.format(n=bound)}\n\n-----Input-----\nOne line as described above.\n\n-----Output-----\nPrint the answer on one line."
            starter = ""
            pairs = [gen(rng, bound) for _ in range(3)]
            question += f"\n\n-----Example-----\nInput\n{pairs[0][0]}\nOutput\n{pairs[0][1]}"
            io_ = {"inputs": [p[0] for p in pairs], "outputs": [p[1] for p in pairs]}
        no_solutions = i % 5 == 3  # upstream has problems whose `solutions` is the empty string
        rows.append(
            {
                "problem_id": base_id + i,
                "question": question,
                "solutions": "" if no_solutions else json.dumps(sols),
                "input_output": "" if (no_solutions and i % 10 == 3) else json.dumps(io_),
                "difficulty": difficulty,
                "url": f"https://datakit.invalid/sample/apps/{split}/{i:05d}",
                "starter_code": starter,
            }
        )
    return rows


def write(out: Path) -> dict[str, int]:
    counts = {}
    for split, n in (("train", 150), ("test", 100)):
        rows = make_apps(n, split)
        write_parquet(rows, APPS, out / "codeparrot__apps" / "all" / f"{split}-00000.parquet")
        counts[f"apps-{split}"] = n
    write_readme(out / "codeparrot__apps", "codeparrot/apps (sample, parquet-mirror schema)", [
        "Config all, splits train and test, in the schema of the hub's parquet conversion (the upstream",
        "loading script does not run with datasets >= 4). `solutions` is a JSON list of programs or the empty",
        "string; `input_output` is JSON (with fn_name for call-based problems) or the empty string.",
    ])
    return counts
