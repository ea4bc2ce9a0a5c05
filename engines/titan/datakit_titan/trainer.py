"""TorchTitan's Trainer with one correction: MFU against the right peak for GPUs TorchTitan
0.3.0 does not know (it falls back to the A100's 312 TFLOPS, e.g. for RTX 5080/5090)."""

from __future__ import annotations

from dataclasses import dataclass

from torchtitan.tools.logging import logger
from torchtitan.trainer import Trainer

from datakit_titan.estimate import gpu_for_device_name


class DatakitTrainer(Trainer):
    @dataclass(kw_only=True, slots=True)
    class Config(Trainer.Config):
        pass

    def __init__(self, config: Config):
        super().__init__(config)
        name = self.metrics_processor.device_memory_monitor.device_name
        gpu = gpu_for_device_name(str(name))
        if gpu is not None:
            self.metrics_processor.gpu_peak_flops = gpu.peak_bf16_tflops * 1e12
            logger.info(f"MFU against {gpu.name} peak {gpu.peak_bf16_tflops} TFLOPS ({gpu.source})")
