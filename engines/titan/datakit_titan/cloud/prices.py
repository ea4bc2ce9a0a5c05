"""What a node costs per hour, and where that figure comes from.

Order: `--price-per-hour` (dollars per GPU-hour, as in `titan estimate`); infra you own (ssh, kubernetes,
slurm) is $0 unless that flag says otherwise; SkyPilot's catalog (its cached copy, refreshed online);
the dated table `prices.toml` next to this file. Nothing found: refuse (fix: --price-per-hour).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from datakit.errors import UserError
from datakit_titan.cloud import sky
from datakit_titan.cloud.gpus import OWN_HARDWARE, GpuChoice

TABLE = Path(__file__).with_name("prices.toml")


@dataclass(frozen=True)
class Price:
    usd_per_node_hour: float
    n_gpus: int  # GPUs per node the price is for
    source: str
    instance_type: str | None = None
    region: str | None = None
    note: str = ""  # why a fallback was used

    @property
    def usd_per_gpu_hour(self) -> float:
        return self.usd_per_node_hour / self.n_gpus


def table_price(cloud: str, gpu: GpuChoice, spot: bool) -> Price | None:
    for row in tomllib.loads(TABLE.read_text())["price"]:
        if (row["cloud"], row["accelerator"], row["count"]) != (cloud, gpu.sky_name, gpu.count):
            continue
        usd = row.get("spot_usd_per_hour") if spot else row["usd_per_hour"]
        if usd is None:
            return None
        return Price(usd, gpu.count, f"dated table {TABLE.name} ({row['source']}, as of {row['as_of']})",
                     row.get("instance_type"), row.get("region"))
    return None


def find_price(cloud: str, region: str | None, gpu: GpuChoice, *, spot: bool = False, price_per_gpu_hour: float | None = None) -> Price:
    if price_per_gpu_hour is not None:
        if price_per_gpu_hour < 0:
            raise UserError(f"--price-per-hour {price_per_gpu_hour}: a price cannot be negative", field="--price-per-hour",
                            fix="pass dollars per GPU-hour, e.g. 0.89")
        return Price(price_per_gpu_hour * gpu.count, gpu.count, "--price-per-hour")
    if cloud in OWN_HARDWARE:
        return Price(0.0, gpu.count, f"own hardware ({cloud}): $0 rent; pass --price-per-hour for power or amortization")
    kind = "spot" if spot else "on-demand"
    got = sky.catalog_price(cloud, gpu.sky_name, gpu.count, spot, region)
    if "error" not in got:
        return Price(got["usd_per_hour"], gpu.count, f"SkyPilot catalog ({kind}, cheapest region)", got.get("instance_type"), got.get("region"))
    table = table_price(cloud, gpu, spot)
    if table is not None:
        return Price(table.usd_per_node_hour, table.n_gpus, table.source, table.instance_type, table.region,
                     note=f"SkyPilot's catalog is unavailable here ({got['error'][:100]})")
    raise UserError(
        f"no {kind} price for {gpu.sky_accelerators} on {cloud}: SkyPilot's catalog is unavailable ({got['error'][:120]}) "
        f"and {TABLE.name} has no such row", field="--price-per-hour",
        fix="pass --price-per-hour <dollars per GPU-hour> (or go online once so SkyPilot caches its catalog)",
    )
