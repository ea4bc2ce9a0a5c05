"""An Azure usage export: `az consumption usage list -o json` (a JSON list of usage details).

Two shapes, by az version:
- az CLI's consumption module before its 2024-08-01 regeneration: flat objects with `pretaxCost` (a string),
  `currency`, `usageStart`, `instanceId`, `meterDetails` (null unless --include-meter-details).
- api-version 2024-08-01 (aaz): objects with `kind` "legacy" (pay-as-you-go, credit offers: `cost`,
  `billingCurrency`, `date`, `resourceGroup`, `meterDetails.meterCategory`) or "modern" (Microsoft Customer
  Agreement: `costInUSD` / `costInBillingCurrency`, `billingCurrencyCode`, `meterCategory`).
- the REST API's own shape (`az rest` on .../Microsoft.Consumption/usageDetails): a `value` list whose items
  hold those fields under `properties`; both are unwrapped.
A sample of the second kind ships as datakit/cost/samples/az_consumption_usage.json (constructed in that
schema with example ids and our dated price; not a real bill).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from datakit.errors import UserError

FIX = "export it with `az consumption usage list -o json > usage.json` (see docs/cloud.md)"


def _cost(item: dict) -> tuple[float, str]:
    kind = item.get("kind")
    if kind == "modern":
        if item.get("costInUSD") is not None:
            return float(item["costInUSD"]), "USD"
        return float(item.get("costInBillingCurrency") or 0), item.get("billingCurrencyCode") or "?"
    if kind == "legacy" or "cost" in item:
        return float(item.get("cost") or 0), item.get("billingCurrency") or "?"
    if "pretaxCost" in item:
        return float(item["pretaxCost"] or 0), item.get("currency") or "?"
    raise KeyError("no cost field (cost, costInUSD, costInBillingCurrency or pretaxCost)")


def _category(item: dict) -> str:
    md = item.get("meterDetails") or {}
    return md.get("meterCategory") or item.get("meterCategory") or item.get("consumedService") or "unknown"


def _group(item: dict) -> str:
    if item.get("resourceGroup"):
        return item["resourceGroup"].lower()
    m = re.search(r"/resourceGroups/([^/]+)", item.get("instanceId") or item.get("resourceId") or "", re.IGNORECASE)
    return m.group(1).lower() if m else "unknown"


def read_azure_usage(path: str | Path) -> dict:
    path = Path(path)
    try:
        items = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError("no such file", file=str(path), fix=FIX) from None
    except ValueError as e:
        raise UserError(f"not JSON: {e}", file=str(path), fix=FIX) from e
    if isinstance(items, dict) and isinstance(items.get("value"), list):
        items = items["value"]  # the REST API's envelope
    if not isinstance(items, list):
        raise UserError("expected a JSON list of usage details", file=str(path), fix=FIX)
    total, currencies = 0.0, set()
    by_cat: dict[str, float] = defaultdict(float)
    by_group: dict[str, float] = defaultdict(float)
    dates = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("properties"), dict):
            item = {**item, **item["properties"]}  # the REST API's shape (`az rest`): the fields sit under properties
        try:
            usd, cur = _cost(item)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"usage detail {i} has no readable cost ({e})", file=str(path), field=f"[{i}]", fix=FIX) from e
        total += usd
        currencies.add(cur)
        by_cat[_category(item)] += usd
        by_group[_group(item)] += usd
        d = item.get("date") or item.get("usageStart")
        if d:
            dates.append(str(d)[:10])
    return {
        "file": str(path), "n_items": len(items), "total": total, "currency": "/".join(sorted(currencies)) or "USD",
        "by_category": dict(sorted(by_cat.items(), key=lambda kv: -kv[1])), "by_resource_group": dict(sorted(by_group.items(), key=lambda kv: -kv[1])),
        "first_day": min(dates) if dates else None, "last_day": max(dates) if dates else None,
    }
