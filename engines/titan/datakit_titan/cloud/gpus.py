"""Cloud and GPU names: SkyPilot's spelling, and the `titan estimate` catalogue entry behind each GPU.

    --cloud azure --gpu A100-80GB        one A100 80GB (Azure: Standard_NC24ads_A100_v4)
    --cloud runpod --gpu RTX5090:2       two RTX 5090s on one node
    --cloud ssh/my-box --gpu RTX5080     your own machine (SkyPilot SSH node pool): $0/GPU-hour by default

`--cloud` takes SkyPilot's infra syntax (`azure`, `azure/eastus`, `kubernetes/my-context`, `ssh/my-pool`);
`--gpu` takes SkyPilot's accelerator names with an optional `:count`, or the estimate's short names
(a100, rtx5090, ...). Only GPUs `titan estimate` has peak FLOPS and memory for are accepted: time,
dollars and the memory check all come from there.
"""

from __future__ import annotations

from dataclasses import dataclass

from datakit.errors import UserError
from datakit_titan.estimate import GPUS, Gpu

# SkyPilot 0.14.1's cloud registry (sky.utils.registry.CLOUD_REGISTRY)
SKY_CLOUDS = (
    "aws", "azure", "cudo", "do", "fluidstack", "gcp", "hyperbolic", "ibm", "kubernetes", "lambda", "mithril", "nebius",
    "oci", "paperspace", "primeintellect", "runpod", "scp", "seeweb", "shadeform", "slurm", "ssh", "vast", "verda",
    "vsphere", "yotta",
)
# infra the user owns: nothing is rented, so $0/GPU-hour unless --price-per-hour says otherwise
OWN_HARDWARE = ("kubernetes", "ssh", "slurm")

# estimate catalogue key -> SkyPilot accelerator name (sky show-gpus)
SKY_ACCELERATOR = {"a100": "A100-80GB", "h100": "H100", "h200": "H200", "rtx5090": "RTX5090", "rtx5080": "RTX5080"}


@dataclass(frozen=True)
class GpuChoice:
    key: str  # estimate catalogue key (a100, rtx5090, ...)
    sky_name: str  # SkyPilot accelerator name (A100-80GB, RTX5090, ...)
    count: int  # GPUs per node
    spec: Gpu

    @property
    def sky_accelerators(self) -> str:
        return f"{self.sky_name}:{self.count}"


def parse_cloud(cloud: str) -> tuple[str, str | None]:
    """'azure' / 'azure/eastus' / 'ssh/my-pool' -> (cloud, region or pool)."""
    name, _, rest = cloud.strip().partition("/")
    name = name.lower()
    if name not in SKY_CLOUDS:
        raise UserError(f"unknown cloud {cloud!r}", field="--cloud",
                        fix=f"use one of SkyPilot's: {', '.join(SKY_CLOUDS)} (optionally cloud/region, e.g. azure/eastus)")
    return name, rest or None


def parse_gpu(gpu: str) -> GpuChoice:
    """'A100-80GB' / 'a100' / 'RTX5090:2' -> the GPU and how many per node."""
    name, _, count = gpu.strip().partition(":")
    try:
        n = int(count) if count else 1
    except ValueError:
        n = 0
    if n < 1:
        raise UserError(f"bad GPU count in {gpu!r}", field="--gpu", fix="write NAME or NAME:COUNT, e.g. RTX5090:2")
    squashed = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    by_sky = {v.lower().replace("-", ""): k for k, v in SKY_ACCELERATOR.items()}
    key = squashed if squashed in GPUS else by_sky.get(squashed)
    if key is None or key not in SKY_ACCELERATOR:
        valid = ", ".join(f"{SKY_ACCELERATOR[k]} ({k})" for k in SKY_ACCELERATOR)
        raise UserError(f"unknown GPU {name!r}", field="--gpu", fix=f"use one of {valid}, with :COUNT for several per node")
    return GpuChoice(key=key, sky_name=SKY_ACCELERATOR[key], count=n, spec=GPUS[key])
