"""CPU smoke mode: where TorchTitan 0.3.0 assumes CUDA (three places, a fourth with several
ranks), patched here only.

`enable()` is called by the launcher when --device cpu, before the Trainer is built, and
nowhere else. Each patch replaces one module attribute:

1. Device module. On a CPU-only torch, torchtitan.tools.utils picks device_type "cuda" and
   torch.cuda as its device module (set_device, get_device_name, memory stats,
   current_device). We point every module that imported those names at "cpu" and a small
   stand-in that answers for the CPU.
2. Attention. FlexAttention has no CPU backward (and varlen needs CUDA flash attention); on CPU
   the same block-causal BlockMask is evaluated densely from its mask_mod and handed to SDPA,
   which computes the same masked softmax attention. The BlockMask itself is built eagerly
   (TorchTitan wraps create_block_mask in torch.compile, ~40 s of Inductor work on CPU).
3. set_pg_timeouts runs a barrier with CUDA device ids after step 1; on gloo the barrier takes
   no device ids.
4. (several CPU ranks only) FSDP2 reduce-scatters gradients with PREMUL_SUM(1.0) once TorchTitan
   turns its gradient division off; Gloo has no PREMUL_SUM, so on CPU FSDP is told to use plain
   SUM (the same result: the factor is 1).
"""

from __future__ import annotations

import types
from datetime import timedelta

import torch
import torch.nn.functional as F


class _CpuMemoryStats(dict):
    def __missing__(self, key):
        return 0


def _cpu_device_module() -> types.SimpleNamespace:
    ns = types.SimpleNamespace()
    ns.set_device = lambda *a, **k: None
    ns.current_device = lambda: 0
    ns.device_count = lambda: 1
    ns.is_available = lambda: True
    ns.synchronize = lambda *a, **k: None
    ns.get_device_name = lambda *a, **k: "cpu"
    ns.get_device_properties = lambda *a, **k: types.SimpleNamespace(total_memory=1, name="cpu")
    ns.reset_peak_memory_stats = lambda *a, **k: None
    ns.empty_cache = lambda *a, **k: None
    ns.memory_stats = lambda *a, **k: _CpuMemoryStats()
    ns.manual_seed = torch.manual_seed
    ns.manual_seed_all = torch.manual_seed
    return ns


def dense_mask_from_block_mask(block_mask, q_len: int, kv_len: int) -> torch.Tensor:
    """Evaluate a BlockMask's mask_mod at every (batch, query, key): bool [B, 1, Lq, Lkv]."""
    B = block_mask.kv_num_blocks.shape[0]
    b = torch.arange(B).view(B, 1, 1)
    h = torch.zeros(1, 1, 1, dtype=torch.long)
    q = torch.arange(q_len).view(1, q_len, 1)
    kv = torch.arange(kv_len).view(1, 1, kv_len)
    return block_mask.mask_mod(b, h, q, kv).expand(B, q_len, kv_len).unsqueeze(1)


def _sdpa_with_block_mask(q, k, v, *, score_mod, block_mask, scale, enable_gqa, return_aux, kernel_options):
    """Drop-in for FlexAttention.compiled_flex_attn on CPU (q, k, v are [B, N, L, H])."""
    assert score_mod is None, "CPU smoke mode supports mask-only FlexAttention"
    assert not getattr(return_aux, "lse", False), "CPU smoke mode does not return the log-sum-exp"
    mask = dense_mask_from_block_mask(block_mask, q.shape[-2], k.shape[-2]).to(q.device)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=enable_gqa)
    return out, None


def _set_pg_timeouts_gloo(timeout: timedelta, parallel_dims) -> None:
    from torch.distributed.distributed_c10d import _set_pg_timeout

    torch.distributed.barrier()
    groups = [mesh.get_group() for mesh in parallel_dims.get_all_one_dimensional_meshes().values()] + [None]
    for group in groups:
        _set_pg_timeout(timeout, group)


def _disable_fsdp_gradient_division_gloo(model) -> None:
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)


_enabled = False


def enable() -> None:
    """Apply the CPU patches (idempotent)."""
    global _enabled
    if _enabled:
        return
    import torchtitan.components.metrics as metrics
    import torchtitan.models.common.decoder as decoder
    import torchtitan.distributed.fsdp as fsdp
    import torchtitan.distributed.parallel_dims as parallel_dims
    import torchtitan.distributed.utils as dist_utils
    import torchtitan.models.common.token_dispatcher as token_dispatcher
    import torchtitan.tools.utils as tt_utils
    from torch.nn.attention.flex_attention import create_block_mask
    from torchtitan.models.common.attention import FlexAttention

    module = _cpu_device_module()
    for m in (tt_utils, metrics, dist_utils, token_dispatcher):
        m.device_type, m.device_module = "cpu", module
    parallel_dims.device_type = "cpu"
    FlexAttention.compiled_flex_attn = staticmethod(_sdpa_with_block_mask)
    decoder.create_attention_mask = create_block_mask
    dist_utils.set_pg_timeouts = _set_pg_timeouts_gloo
    fsdp.disable_fsdp_gradient_division = _disable_fsdp_gradient_division_gloo
    _enabled = True
