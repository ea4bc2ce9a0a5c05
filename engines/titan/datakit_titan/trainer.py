"""TorchTitan's Trainer with two additions:

- MFU against the right peak for GPUs TorchTitan 0.3.0 does not know (it falls back to the A100's
  312 TFLOPS, e.g. for RTX 5080/5090);
- `DATAKIT_TITAN_MEMORY_CAP_GIB`: cap this process's CUDA memory (torch.cuda.set_per_process_memory_fraction)
  to try a smaller card's memory on a bigger one (benchmarks/gpu: does a phase fit 16 GB?). An allocation
  past the cap raises CUDA out-of-memory as the smaller card would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from torchtitan.tools.logging import logger
from torchtitan.trainer import Trainer

from datakit_titan.estimate import gpu_for_device_name

ENV_MEMORY_CAP = "DATAKIT_TITAN_MEMORY_CAP_GIB"


def apply_memory_cap() -> float | None:
    """Cap CUDA memory at $DATAKIT_TITAN_MEMORY_CAP_GIB GiB on this rank's device; returns the cap applied."""
    cap = os.environ.get(ENV_MEMORY_CAP)
    if not cap:
        return None
    import torch

    if not torch.cuda.is_available():
        logger.warning(f"{ENV_MEMORY_CAP} is set but there is no CUDA device: not capped")
        return None
    device = int(os.environ.get("LOCAL_RANK", "0"))
    total = torch.cuda.get_device_properties(device).total_memory
    fraction = min(1.0, float(cap) * 1024**3 / total)
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    logger.info(f"CUDA memory capped at {float(cap):g} GiB ({fraction:.1%} of {total / 1024**3:.1f} GiB)")
    return float(cap)


class DatakitTrainer(Trainer):
    @dataclass(kw_only=True, slots=True)
    class Config(Trainer.Config):
        pass

    def __init__(self, config: Config):
        apply_memory_cap()  # before TorchTitan allocates anything
        super().__init__(config)
        name = self.metrics_processor.device_memory_monitor.device_name
        gpu = gpu_for_device_name(str(name))
        if gpu is not None:
            self.metrics_processor.gpu_peak_flops = gpu.peak_bf16_tflops * 1e12
            logger.info(f"MFU against {gpu.name} peak {gpu.peak_bf16_tflops} TFLOPS ({gpu.source})")
