"""Dollar amounts as people read them: enough digits that a small budget never prints as $0.00."""

from __future__ import annotations

import math


def usd(amount_usd: float | None, *, digits: int = 3) -> str:
    """$1,234.56 at a dollar or more; below that `digits` significant digits (at least cents):
    0.001 -> $0.001, 0.000123456 -> $0.000123, 0.5 -> $0.50, 0 -> $0.00."""
    if amount_usd is None:
        return "none"
    a = abs(amount_usd)
    if a >= 1 or a == 0:
        return f"{'-' if amount_usd < 0 else ''}${a:,.2f}"
    decimals = max(2, digits - 1 - math.floor(math.log10(a)))
    text = f"{a:.{decimals}f}".rstrip("0")
    if len(text.split(".")[1]) < 2:
        text = f"{a:.2f}"
    return f"{'-' if amount_usd < 0 else ''}${text}"
