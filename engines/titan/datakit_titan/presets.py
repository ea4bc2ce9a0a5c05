"""Model presets: the plan's llama3-family model (1.59B parameters) and a tiny one for CPU smoke runs.

Shapes only (no torch import, so `titan estimate` is instant); `datakit_titan.spec` turns a
preset into a TorchTitan `Llama3Model` spec.

Embeddings are tied in both (input embedding = output projection). For the plan's config
(vocab 65,536, hidden 2048) the tie saves 134,217,728 parameters (2.1 GB of fp32 weights, grads and AdamW
state), it is what Llama 3.2 1B/3B and SmolLM do at this size, and it keeps the model nearer the
plan's "~1B parameters" (which its own shapes cannot meet: 1,593,935,872 tied vs 1,728,153,600 untied).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Shape of a llama3-family decoder. vocab_size None = take the mixture tokenizer's."""

    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_hidden: int  # SwiGLU inner width
    vocab_size: int | None
    rope_theta: float = 10_000.0
    max_seq_len: int = 8192
    norm_eps: float = 1e-5
    tie_embeddings: bool = True

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


PRESETS: dict[str, Preset] = {
    # the plan: vocab 65,536; hidden 2048; MLP 8192; 24 layers; 16 heads; 4 KV heads; RoPE theta
    # 10,000; max positions 8192; RMSNorm eps 1e-5; bf16 (mixed precision under FSDP2)
    "plan-1.6b": Preset(dim=2048, n_layers=24, n_heads=16, n_kv_heads=4, ffn_hidden=8192, vocab_size=65_536),
    # CPU smoke / CI: a few hundred thousand parameters, vocab from the mixture
    "tiny": Preset(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=192, vocab_size=None, max_seq_len=2048),
    # export tests and the quant report (CPU): every weight row a multiple of 256, so llama.cpp's k-quants
    # (Q6_K, Q5_K_M, Q4_K_M) apply instead of falling back to Q8_0/Q5_0 as they do at tiny's 64
    "small": Preset(dim=256, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=512, vocab_size=None, max_seq_len=2048),
}
