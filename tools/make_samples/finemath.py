"""HuggingFaceTB/finemath (finemath-4plus): templated worked examples, every answer computed.
"""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction
from pathlib import Path

import pyarrow as pa

from tools.make_samples.common import approx_tokens, edu_score, rng_for, write_parquet, write_readme


DIRS = ["HuggingFaceTB__finemath"]


FINEMATH = pa.schema(
    [
        ("url", pa.string()),
        ("fetch_time", pa.int64()),
        ("content_mime_type", pa.string()),
        ("warc_filename", pa.string()),
        ("warc_record_offset", pa.int32()),
        ("warc_record_length", pa.int32()),
        ("text", pa.string()),
        ("token_count", pa.int32()),
        ("char_count", pa.int32()),
        ("metadata", pa.string()),  # a JSON document stored as a string
        ("score", pa.float64()),
        ("int_score", pa.int64()),
        ("crawl", pa.string()),
        ("snapshot_type", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float64()),
    ]
)


def _finemath_page(rng: random.Random, i: int) -> tuple[str, str]:
    kind = i % 4
    if kind == 0:
        a, b, c, d = rng.randint(1, 9), rng.randint(2, 12), rng.randint(1, 9), rng.randint(2, 12)
        s = Fraction(a, b) + Fraction(c, d)
        l = b * d // math.gcd(b, d)
        title = f"Adding fractions: {a}/{b} + {c}/{d}"
        body = (
            f"To add $\\frac{{{a}}}{{{b}}}$ and $\\frac{{{c}}}{{{d}}}$ we first find a common denominator. "
            f"The least common multiple of {b} and {d} is {l}.\n\n"
            f"$$\\frac{{{a}}}{{{b}}} = \\frac{{{a * (l // b)}}}{{{l}}}, \\qquad \\frac{{{c}}}{{{d}}} = \\frac{{{c * (l // d)}}}{{{l}}}$$\n\n"
            f"Adding the numerators gives $\\frac{{{a * (l // b) + c * (l // d)}}}{{{l}}}$, which simplifies to "
            f"$\\frac{{{s.numerator}}}{{{s.denominator}}}$.\n\n"
            "**Check:** convert both fractions to decimals and add them; the sum matches "
            f"{float(s):.4f}.\n\nPractice: try the same steps with {a + 1}/{b} + {c}/{d + 1}."
        )
        return title, body
    if kind == 1:
        m, x, c = rng.randint(2, 9), rng.randint(-10, 10), rng.randint(-20, 20)
        r = m * x + c
        title = f"Solving the linear equation {m}x + {c} = {r}"
        body = (
            f"We want the value of $x$ that makes ${m}x + ({c}) = {r}$ true.\n\n"
            f"1. Subtract {c} from both sides: ${m}x = {r} - ({c}) = {r - c}$.\n"
            f"2. Divide both sides by {m}: $x = \\frac{{{r - c}}}{{{m}}} = {x}$.\n\n"
            f"**Check:** ${m} \\cdot ({x}) + ({c}) = {m * x} + ({c}) = {r}$. The solution is $x = {x}$.\n\n"
            "A linear equation in one unknown always has exactly one solution when the coefficient of $x$ is not zero."
        )
        return title, body
    if kind == 2:
        m_, n_ = sorted(rng.sample(range(1, 13), 2), reverse=True)  # Euclid's formula for a triple
        p, q = m_ * m_ - n_ * n_, 2 * m_ * n_
        k = rng.randint(1, 4)
        a, b = p * k, q * k
        cc = k * (m_ * m_ + n_ * n_)
        title = f"Pythagorean theorem: legs {a} and {b}"
        body = (
            f"A right triangle has legs of length {a} and {b}. By the Pythagorean theorem $c^2 = a^2 + b^2$.\n\n"
            f"$$c^2 = {a}^2 + {b}^2 = {a * a} + {b * b} = {a * a + b * b}$$\n\n"
            f"Taking the square root, $c = \\sqrt{{{a * a + b * b}}} = {cc}$.\n\n"
            f"Notice that ({a}, {b}, {cc}) is {k} times the triple ({p}, {q}, {cc // k}), which Euclid's formula "
            f"gives for m = {m_}, n = {n_}: $(m^2 - n^2,\\ 2mn,\\ m^2 + n^2)$."
        )
        return title, body
    principal, rate, years = rng.randint(10, 90) * 100, rng.choice([2, 3, 4, 5, 6]), rng.randint(2, 6)
    amount = principal
    lines = []
    for y in range(1, years + 1):
        new = round(amount * (100 + rate) / 100, 2)
        lines.append(f"| {y} | {amount:.2f} | {new - amount:.2f} | {new:.2f} |")
        amount = new
    title = f"Compound interest on ${principal} at {rate}% for {years} years"
    body = (
        f"Compound interest adds the interest to the balance each year, so next year's interest is computed on a larger amount. "
        f"The formula is $A = P(1 + r)^n$ with $P = {principal}$, $r = {rate / 100}$ and $n = {years}$.\n\n"
        "| Year | Start | Interest | End |\n|---|---|---|---|\n" + "\n".join(lines) + "\n\n"
        f"After {years} years the balance is about ${amount:.2f}, compared with "
        f"${principal + principal * rate * years / 100:.2f} under simple interest."
    )
    return title, body


def make_finemath(n: int) -> list[dict]:
    rng = rng_for("finemath")
    rows = []
    for i in range(n):
        title, body = _finemath_page(rng, i)
        text = f"# {title}\n\n{body}"
        score, int_score = edu_score(rng, 3.6, 5.0)  # finemath-4plus keeps int_score >= 4
        url = f"https://datakit.invalid/sample/finemath/{i:05d}"
        meta = {
            "source": "datakit-sample",
            "title": title,
            "extraction": {"math_blocks": body.count("$$"), "inline_math": body.count("$") - 2 * body.count("$$")},
            "score": score,
            "int_score": int_score,
        }
        rows.append(
            {
                "url": url,
                "fetch_time": 1706745600 + i * 37,
                "content_mime_type": "text/html",
                "warc_filename": "datakit-sample/finemath.warc.gz",
                "warc_record_offset": i * 4096,
                "warc_record_length": 2048 + len(text),
                "text": text,
                "token_count": approx_tokens(text),
                "char_count": len(text),
                "metadata": json.dumps(meta, sort_keys=True),
                "score": score,
                "int_score": int_score,
                "crawl": "CC-MAIN-2024-10",
                "snapshot_type": "latest",
                "language": "en",
                "language_score": round(rng.uniform(0.8, 0.99), 6),
            }
        )
    return rows


def write(out: Path) -> dict[str, int]:
    fm = make_finemath(300)
    write_parquet(fm, FINEMATH, out / "HuggingFaceTB__finemath" / "finemath-4plus" / "train-00000.parquet")
    write_readme(out / "HuggingFaceTB__finemath", "HuggingFaceTB/finemath (sample)", [
        "Config finemath-4plus, split train. Templated worked examples (fractions, linear equations,",
        "Pythagorean triples, compound interest) with computed answers. `metadata` is a JSON string, as upstream.",
    ])
    return {}
