"""Registers ShardedAdafactor with TorchTitan's optimizer container as `Adafactor`."""

from __future__ import annotations

from dataclasses import dataclass

from torchtitan.components.optimizer import OptimizersContainer

from datakit_titan.sharded_adafactor import ShardedAdafactor


class DatakitOptimizers(OptimizersContainer):
    """TorchTitan's optimizer container plus `Adafactor` (ShardedAdafactor) by name."""

    @dataclass(kw_only=True, slots=True)
    class Config(OptimizersContainer.Config):
        pass

    @staticmethod
    def _resolve_optimizer_factory(name: str):
        if name == "Adafactor":
            return ShardedAdafactor
        return OptimizersContainer._resolve_optimizer_factory(name)
