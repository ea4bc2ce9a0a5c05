"""Adafactor that works on FSDP2's sharded (DTensor) parameters, and registered with TorchTitan in datakit_titan.adafactor.

The plan picks Adafactor so its model (1.59B parameters) trains in 16 GB. TorchTitan wraps every model in
`fully_shard`, so parameters are DTensors (even on one GPU), and `torch.optim.Adafactor` fails on
them (torch 2.13: an in-place `pow_` needs a placement change on a `_NormPartial`). This is the
same algorithm as `torch.optim.Adafactor` (Shazeer & Stern 2018 as implemented there: factored
second moments for matrices, no first moment, relative step size, update clipping), computed on
each rank's local shard with the few statistics that span shards all-reduced:

    weight [R, C] sharded Shard(0) over ranks -> each rank holds rows [r0, r1)
    row second moment  mean_c g^2        : local rows, no communication
    column second moment mean_r g^2      : all-reduce the per-rank row sums, / R
    mean of the row moments (normalizer) : all-reduce, / R
    ||param||, ||update|| (RMS scaling)  : all-reduce of the squared sums

State tensors are DTensors placed like the parameter (row moment and vector variance Shard(0),
column moment Replicate), so TorchTitan's distributed checkpoint saves and reloads them.
Plain (non-DTensor) tensors take the same code path with no communication.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, Replicate, Shard
from torch.optim import Optimizer


def _shard_groups(p: torch.Tensor) -> list:
    """Process groups over which `p`'s dim 0 is split (empty for plain or replicated tensors)."""
    if not isinstance(p, DTensor):
        return []
    groups = []
    for i, placement in enumerate(p.placements):
        if isinstance(placement, Shard):
            if placement.dim != 0:
                raise NotImplementedError(f"Adafactor supports Shard(0) parameters only, got {p.placements}")
            groups.append(p.device_mesh.get_group(i))
        elif not isinstance(placement, Replicate):
            raise NotImplementedError(f"Adafactor does not support placement {placement}")
    return groups


def _all_sum(t: torch.Tensor, groups: list) -> torch.Tensor:
    for g in groups:
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=g)
    return t


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if isinstance(t, DTensor) else t


def _state_like(p: torch.Tensor, local: torch.Tensor, global_shape: list[int], replicate: bool = False) -> torch.Tensor:
    """A state tensor placed like `p` (or replicated): a DTensor for DTensor params."""
    if not isinstance(p, DTensor):
        return local
    placements = [Replicate()] * len(p.placements) if replicate else list(p.placements)
    stride = torch.empty(global_shape, device="meta").stride()
    return DTensor.from_local(local, p.device_mesh, placements, run_check=False, shape=torch.Size(global_shape), stride=stride)


class ShardedAdafactor(Optimizer):
    """torch.optim.Adafactor's update for plain and FSDP2-sharded (Shard(0)) parameters.

    lr: relative step cap (step size = min(lr, 1/sqrt(t)) x RMS(param)). beta2_decay: second-
    moment decay exponent (beta2_t = 1 - t^beta2_decay). eps: (eps1 for the second moment, None =
    dtype eps; eps2 floor of the parameter RMS). d: update clipping threshold. weight_decay:
    decoupled, multiplies the parameter by 1 - lr x weight_decay.
    """

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8, eps=(None, 1e-3), d: float = 1.0, weight_decay: float = 0.0, **_ignored):
        # **_ignored: TorchTitan's container passes fused=/foreach= to every optimizer
        if lr < 0 or beta2_decay > 0 or d < 1 or weight_decay < 0:
            raise ValueError(f"invalid Adafactor hyperparameters lr={lr} beta2_decay={beta2_decay} d={d} weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "beta2_decay": beta2_decay, "eps": tuple(eps), "d": d, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, beta2_decay, (eps1, eps2), d, wd = group["lr"], group["beta2_decay"], group["eps"], group["d"], group["weight_decay"]
            lr = float(lr)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self._update(p, lr, beta2_decay, eps1, eps2, d, wd)
        return loss

    def _update(self, p, lr, beta2_decay, eps1, eps2, d, wd) -> None:
        groups = _shard_groups(p)
        param, grad = _local(p), _local(p.grad)
        if grad.is_sparse or torch.is_complex(grad):
            raise RuntimeError("Adafactor does not support sparse or complex gradients")
        shape = list(p.shape)  # global shape
        if len(shape) > 2 and groups:
            raise NotImplementedError("sharded Adafactor handles 1-D and 2-D parameters")
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            if len(shape) > 1:
                state["row_var"] = _state_like(p, grad.new_zeros([*grad.shape[:-1], 1]), [*shape[:-1], 1])
                state["col_var"] = _state_like(p, grad.new_zeros([*grad.shape[:-2], 1, grad.shape[-1]]), [*shape[:-2], 1, shape[-1]], replicate=True)
            else:
                state["variance"] = _state_like(p, torch.zeros_like(grad, memory_format=torch.preserve_format), shape)
        eps1 = torch.finfo(param.dtype).eps if eps1 is None else eps1
        step_t = state["step"]  # kept on the CPU: reading it is not a device sync
        step_t += 1
        t = step_t.item()
        one_minus_beta2 = t**beta2_decay
        rho = min(lr, 1 / t**0.5)
        numel = p.numel()  # global
        # The RMS scalings stay on the device (0-dim tensors): a .item() here would stall the GPU
        # twice per parameter tensor per step (~340 host syncs per step for plan-1.6b).
        sq = _all_sum(param.float().square().sum().reshape(1), groups).reshape(())
        alpha = (sq.sqrt() / numel**0.5).clamp_(min=eps2).mul_(rho)
        if wd != 0:
            param.mul_(1 - lr * wd)
        if len(shape) > 1:
            row_var, col_var = _local(state["row_var"]), _local(state["col_var"])
            row_mean = torch.norm(grad, dim=-1, keepdim=True).square_().div_(shape[-1])  # local rows
            row_var.lerp_(row_mean, one_minus_beta2)
            col_sum = torch.norm(grad, dim=-2, keepdim=True).square_()  # this rank's rows
            col_var.lerp_(_all_sum(col_sum, groups).div_(shape[-2]), one_minus_beta2)
            row_var_mean = _all_sum(row_var.sum(dim=-2, keepdim=True), groups).div_(shape[-2])
            var_estimate = (row_var @ col_var).div_(row_var_mean.clamp_(min=eps1))
        else:
            variance = _local(state["variance"])
            variance.lerp_(grad * grad, one_minus_beta2)
            var_estimate = variance.clone()
        update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_()
        update.mul_(grad)
        usq = _all_sum(update.float().square().sum().reshape(1), groups).reshape(())
        denom = (usq.sqrt() / (numel**0.5 * d)).clamp_(min=1.0)
        param.addcmul_(update, alpha.div_(denom).neg_())  # param - alpha / denom * update, rounded once
