"""microsoft/orca-math-word-problems-200k: gsm8k's templated problems with prose step-by-step answers.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tools.make_samples.common import rng_for, write_parquet, write_readme
from tools.make_samples.gsm8k import _gsm8k_problem


DIRS = ["microsoft__orca-math-word-problems-200k"]


ORCA_MATH = pa.schema([("question", pa.string()), ("answer", pa.string())])


def make_orca_math(n: int) -> list[dict]:
    rng = rng_for("orca-math")
    rows = []
    for _ in range(n):
        q, a, final = _gsm8k_problem(rng)
        steps = [line.split("<<")[0] + line.split(">>")[-1] if "<<" in line else line for line in a.split("\n")[:-1]]
        prose = " ".join(s.strip() for s in steps)
        rows.append({"question": q, "answer": f"Let's work through it step by step. {prose} Therefore, the answer is {final}."})
    return rows


def write(out: Path) -> dict[str, int]:
    orca = make_orca_math(300)
    write_parquet(orca, ORCA_MATH, out / "microsoft__orca-math-word-problems-200k" / "default" / "train-00000.parquet")
    write_readme(out / "microsoft__orca-math-word-problems-200k", "microsoft/orca-math-word-problems-200k (sample)", [
        "Config default, split train. Templated word problems with prose step-by-step answers (computed).",
    ])
    return {"orca-math": len(orca)}
