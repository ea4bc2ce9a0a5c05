"""A preset -> TorchTitan llama3-family ModelSpec (pre-norm RMSNorm, GQA, RoPE, SwiGLU), built with
TorchTitan's own llama3 layer builder so parallelization, checkpoint adapters and FLOP counting
are TorchTitan's."""

from __future__ import annotations

from torchtitan.distributed.pipeline_parallel import pipeline_llm
from torchtitan.models.common import ComplexRoPE, Embedding, Linear, RMSNorm
from torchtitan.models.llama3 import (  # torchtitan's llama3 building blocks (pinned <0.4)
    _EMBEDDING_SKIP_INIT,
    _NORM_INIT,
    _build_llama3_layers,
    _output_linear_init,
)
from torchtitan.models.llama3 import Llama3Model, parallelize_llama
from torchtitan.models.llama3.state_dict_adapter import Llama3StateDictAdapter
from torchtitan.protocols.model_spec import ModelSpec

from datakit_titan.presets import PRESETS, Preset


def model_config(p: Preset, vocab_size: int, attn_backend: str = "flex") -> Llama3Model.Config:
    """The llama3 config of preset `p` (attn_backend "flex": block-causal over packed documents)."""
    layers = _build_llama3_layers(
        fuse_qkv=True,
        n_layers=p.n_layers,
        dim=p.dim,
        n_heads=p.n_heads,
        n_kv_heads=p.n_kv_heads,
        hidden_dim=p.ffn_hidden,
        rope=ComplexRoPE.Config(dim=p.head_dim, max_seq_len=p.max_seq_len, theta=p.rope_theta, scaling="none"),
        attn_backend=attn_backend,
    )
    for layer in layers:
        layer.attention_norm.eps = p.norm_eps
        layer.ffn_norm.eps = p.norm_eps
    return Llama3Model.Config(
        dim=p.dim,
        vocab_size=vocab_size,
        enable_weight_tying=p.tie_embeddings,
        tok_embeddings=Embedding.Config(num_embeddings=vocab_size, embedding_dim=p.dim, param_init=_EMBEDDING_SKIP_INIT),
        norm=RMSNorm.Config(normalized_shape=p.dim, eps=p.norm_eps, param_init=_NORM_INIT),
        lm_head=Linear.Config(in_features=p.dim, out_features=vocab_size, param_init=_output_linear_init(p.dim)),
        layers=layers,
    )


def model_spec(name: str, vocab_size: int, attn_backend: str = "flex") -> ModelSpec:
    """A TorchTitan ModelSpec for preset `name` with the given vocabulary."""
    return ModelSpec(
        name="llama3",
        flavor=name,
        model=model_config(PRESETS[name], vocab_size, attn_backend),
        parallelize_fn=parallelize_llama,
        pipelining_fn=pipeline_llm,
        post_optimizer_build_fn=None,
        state_dict_adapter=Llama3StateDictAdapter,
    )
