"""TorchTitan's MetricsProcessor with the run's cost: every log step adds the `cost/*` fields to what goes
to TensorBoard / wandb and flushes `<run>/cost.json` (datakit_titan.cost). Rank 0 writes; the
processor is TorchTitan's own component, swapped in through its Config (config_registry.build_config)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchtitan.components.metrics import MetricsProcessor

from datakit_titan.cost import RunCost, stage_estimate
from datakit_titan.estimate import gpu_for_device_name


class CostMetricsProcessor(MetricsProcessor):
    @dataclass(kw_only=True, slots=True)
    class Config(MetricsProcessor.Config):
        phase_name: str = ""
        stage: int = 1
        usd_per_gpu_hour: float | None = None
        """$/GPU-hour: `titan run --price-per-hour` or the price `titan launch` found; None = not priced"""
        price_source: str = ""
        stage_tokens: int = 0
        estimate_mfu: float = 0.4
        """the MFU `titan estimate` assumes, for the estimate-vs-actual fields"""
        flops_per_token: float = 0.0
        """6N + attention at this stage's seq_len (datakit_titan.estimate.flops_per_token)"""

    def __init__(self, config: Config, *, dump_folder: str = "./outputs", **kwargs):
        super().__init__(config, dump_folder=dump_folder, **kwargs)
        self.cost = None
        if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
            return
        n_gpus = self.parallel_dims.world_size
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
        gpu = gpu_for_device_name(name) if device.type == "cuda" else None
        estimate = None
        if gpu is not None and config.flops_per_token > 0:
            estimate = stage_estimate(gpu_name=gpu.name, peak_flops_per_gpu=gpu.peak_bf16_tflops * 1e12, n_gpus=n_gpus,
                                      flops_per_token=config.flops_per_token, mfu=config.estimate_mfu,
                                      stage_tokens=config.stage_tokens or None, usd_per_gpu_hour=config.usd_per_gpu_hour)
        self.cost = RunCost(dump_folder, phase=config.phase_name, stage=config.stage, gpu=name, n_gpus=n_gpus,
                            usd_per_gpu_hour=config.usd_per_gpu_hour,
                            price_source=config.price_source or ("cpu" if device.type == "cpu" else "no price given"),
                            flops_per_token=config.flops_per_token or None,
                            peak_flops_per_gpu=gpu.peak_bf16_tflops * 1e12 if gpu else None,
                            stage_tokens=config.stage_tokens or None, estimate=estimate)
        self.cost.write()

    def log(self, step, global_avg_loss, global_max_loss, grad_norm, extra_metrics=None):
        extra = dict(extra_metrics or {})
        if self.cost is not None:
            tokens = int(extra.get("n_tokens_seen", 0))
            if not self.cost.begun:  # first log of this process: tokens since the (restored) start are still counted here
                self.cost.begin(tokens - self.ntokens_since_last_log * self.parallel_dims.world_size)
            self.cost.update(step=step, tokens=tokens)
            self.cost.write()
            extra.update(self.cost.metrics())
        super().log(step, global_avg_loss, global_max_loss, grad_norm, extra_metrics=extra)

    def close(self):
        if self.cost is not None:  # the last steps since the previous log: tokens counted locally on every rank
            rec = self.cost.record
            tokens = rec["tokens"] + self.ntokens_since_last_log * self.parallel_dims.world_size
            self.cost.update(step=rec["step"], tokens=tokens)
            self.cost.write()
        super().close()
