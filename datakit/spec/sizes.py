"""Human sizes: `50B`, `500M`, `1.5K`, `12_000` tokens; `2G`, `500MB` bytes."""

from __future__ import annotations

import re

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}


def parse_size(value: int | float | str) -> int:
    """Parse a count like 50B (1e9), 500M, 12_000, 1.5K, or a byte size like 2GB; raise ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 50B or 500M, got {value!r}")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"expected a finite size, got {value!r}")
        if value < 0:
            raise ValueError(f"size must be >= 0, got {value}")
        return int(value)
    text = str(value).strip().upper()
    if text.endswith("B") and len(text) > 1 and text[-2] in "KMGT":  # 500MB, 2GB
        text = text[:-1]
    m = re.fullmatch(r"([0-9][0-9_]*(?:\.[0-9]+)?)([KMBGT]?)", text)
    if not m:
        raise ValueError(f"expected a size like 50B, 500M, 1.5K or 12_000, got {value!r}")
    return int(round(float(m.group(1).replace("_", "")) * _SUFFIX[m.group(2)]))


def human(n: float, unit: str = "") -> str:
    """12_345_678 -> '12.3M'. Used in every table and message."""
    n = float(n)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}{unit}"
    return f"{n:.4g}{unit}" if n != int(n) else f"{int(n)}{unit}"
