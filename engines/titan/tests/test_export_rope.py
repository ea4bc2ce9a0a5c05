"""Phase 3's RoPE in the exports: the frequencies transformers computes from our config.json, and those
llama.cpp gets from the GGUF's base + `rope_freqs` factors, equal TorchTitan's own RoPE cache, for plain
theta and both scalings (llama, yarn). No model weights needed: the RoPE is the whole question."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from datakit_titan.export.gguf import rope_factors
from datakit_titan.export.hf import hf_config
from datakit_titan.presets import PRESETS


def titan_rope(theta: float, scaling: str, factor: float, original: int | None, dim: int = 64):
    from torchtitan.models.common import ComplexRoPE

    cfg = ComplexRoPE.Config(dim=dim, max_seq_len=64, theta=theta, scaling=scaling)
    if scaling == "llama":
        cfg.scaling_factor, cfg.original_max_position_embeddings = factor, original
    elif scaling == "yarn":
        cfg.rope_factor, cfg.original_seq_len = factor, original
    return cfg.build()


@pytest.mark.parametrize("scaling,factor,original", [("none", 1.0, None), ("llama", 8.0, 256), ("yarn", 4.0, 256)])
def test_hf_and_gguf_rope_equal_torchtitans(scaling, factor, original):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    theta = 500_000.0
    rope = titan_rope(theta, scaling, factor, original)
    titan_freq = torch.angle(rope.cache[1].to(torch.complex128))  # angle at position 1 = each pair's frequency
    preset = PRESETS["small"]
    t = SimpleNamespace(preset=preset, vocab_size=4096, context=2048, manifest=SimpleNamespace(tokenizer=SimpleNamespace(bos_id=1, eos_id=2, pad_id=0)),
                        rope={"theta": theta, "scaling": scaling, "factor": factor, "original_seq_len": original})
    cfg_dict = hf_config(t, "float32")
    cfg_dict.pop("rope_scaling"), cfg_dict.pop("rope_theta")  # transformers 5 reads rope_parameters
    cfg = LlamaConfig(**{k: v for k, v in cfg_dict.items() if k not in ("architectures", "transformers_version")})
    rope_type = cfg.rope_parameters["rope_type"]
    if rope_type == "default":
        inv = 1.0 / (cfg.rope_parameters["rope_theta"] ** (torch.arange(0, 64, 2, dtype=torch.float64) / 64))
        scale = 1.0
    else:
        inv, scale = ROPE_INIT_FUNCTIONS[rope_type](cfg, "cpu")
    assert torch.allclose(inv.double(), titan_freq, rtol=1e-5, atol=1e-9), (scaling, inv[:4], titan_freq[:4])
    assert scale == pytest.approx(1.0)  # no YaRN attention scaling: TorchTitan's llama3 has none
    model = SimpleNamespace(layers={"0": SimpleNamespace(attention=SimpleNamespace(rope=rope))})
    f = rope_factors(model)
    if scaling == "none":
        assert f is None
    else:  # llama.cpp: angle = p * theta^(-2i/d) / factor[i]
        base = 1.0 / (theta ** (torch.arange(0, 64, 2, dtype=torch.float64) / 64))
        assert torch.allclose(base / torch.from_numpy(f).double(), titan_freq, rtol=1e-6) and not math.isclose(float(f.max()), 1.0)
