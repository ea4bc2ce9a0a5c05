"""Dollar prices per token for a model: litellm's price map first, the spec's override otherwise.

    price = resolve_price("azure/my-deployment", price_model="azure/gpt-4o")   # Azure: deployment != model
    price = resolve_price("openai/qwen", in_usd_per_mtok=0.2, out_usd_per_mtok=0.6)  # spec prices
    price.cost_usd(n_prompt_tokens=1200, n_completion_tokens=800)

An unknown price refuses to start: a budget cannot be enforced at $0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from datakit.errors import UserError


@dataclass(frozen=True)
class Price:
    """in/out: US dollars per million prompt / completion tokens (reasoning tokens are completion tokens)."""

    in_usd_per_mtok: float
    out_usd_per_mtok: float
    source: str  # "litellm:<model key>" or "spec"

    def cost_usd(self, n_prompt_tokens: int, n_completion_tokens: int) -> float:
        return (n_prompt_tokens * self.in_usd_per_mtok + n_completion_tokens * self.out_usd_per_mtok) / 1e6


def import_litellm():
    """litellm, imported offline-safe (its bundled price map, no fetch) and quiet."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def litellm_price(model: str) -> Price | None:
    """The price litellm's bundled map gives `model`, or None when it does not know it."""
    litellm = import_litellm()
    try:
        info = litellm.get_model_info(model)
    except Exception:
        return None
    p_in, p_out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if not p_in or not p_out:
        return None
    return Price(p_in * 1e6, p_out * 1e6, f"litellm:{model}")


def resolve_price(
    model: str,
    *,
    price_model: str | None = None,
    in_usd_per_mtok: float | None = None,
    out_usd_per_mtok: float | None = None,
    file: str | None = None,
    field: str | None = None,
) -> Price:
    """Prices for `model`.

    price_model: the model whose list price applies (Azure: the base model of a deployment).
    in_usd_per_mtok/out_usd_per_mtok: explicit prices from the spec; they win over litellm's map.
    file/field: where the prices would be set, for the error message.
    """
    if in_usd_per_mtok is not None or out_usd_per_mtok is not None:
        if not in_usd_per_mtok or not out_usd_per_mtok or in_usd_per_mtok < 0 or out_usd_per_mtok < 0:
            raise UserError(
                f"prices for {model} must both be set and > 0 (got in={in_usd_per_mtok}, out={out_usd_per_mtok})",
                file=file,
                field=field,
                fix="set price_in_usd_per_mtok and price_out_usd_per_mtok to what the provider charges per 1M tokens",
            )
        return Price(float(in_usd_per_mtok), float(out_usd_per_mtok), "spec")
    for candidate in (price_model, model):
        if candidate:
            price = litellm_price(candidate)
            if price is not None:
                return price
    raise UserError(
        f"no price known for model {price_model or model}, so the budget cannot be enforced",
        file=file,
        field=field,
        fix="set price_in_usd_per_mtok and price_out_usd_per_mtok in the provider profile "
        "(or price_model to a model litellm prices, e.g. azure/gpt-4o)",
    )
