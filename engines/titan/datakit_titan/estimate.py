"""`titan estimate`: parameters, FLOPs, memory, wall-clock and dollars for a phase, in one place.

Every figure that matters is computed here with its formula next to it. Nothing imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from datakit.errors import UserError
from datakit_titan.presets import PRESETS, Preset


@dataclass(frozen=True)
class Gpu:
    name: str
    peak_bf16_tflops: float  # dense (no 2:4 sparsity), BF16 inputs with FP32 accumulate
    memory_gib: float
    source: str


GPUS: dict[str, Gpu] = {
    # GeForce: NVIDIA RTX Blackwell GPU Architecture whitepaper (2025), appendix spec tables, "Peak
    # FP16/BF16 Tensor TFLOPS with FP32 Accumulate" (dense). Cross-check: SMs x boost clock x 512
    # dense FLOP/clk/SM (the Ada rate: RTX 4090 = 128 x 2.52 GHz x 512 = 165.2 TFLOPS, as published):
    # 5080 = 84 x 2.617 GHz x 512 = 112.6; 5090 = 170 x 2.407 GHz x 512 = 209.5.
    "rtx5080": Gpu("RTX 5080", 112.6, 16, "NVIDIA RTX Blackwell whitepaper; 84 SM x 2.617 GHz x 512"),
    "rtx5090": Gpu("RTX 5090", 209.5, 32, "NVIDIA RTX Blackwell whitepaper; 170 SM x 2.407 GHz x 512"),
    # Data center: vendor datasheets, dense = half the "with sparsity" headline figure.
    # A100 80GB: SXM and PCIe have the same 312 TFLOPS dense BF16 on the datasheet; Azure's
    # Standard_NC24ads_A100_v4 (the plan's phase-3 machine) is one A100 80GB PCIe.
    "a100": Gpu("A100 80GB", 312.0, 80, "nvidia.com/en-us/data-center/a100 (BF16 Tensor Core 312 TFLOPS, SXM and PCIe)"),
    "h100": Gpu("H100 SXM", 989.4, 80, "nvidia.com/en-us/data-center/h100 (BF16 1,979 TFLOPS with sparsity)"),
    "h200": Gpu("H200 SXM", 989.4, 141, "nvidia.com/en-us/data-center/h200 (BF16 1,979 TFLOPS with sparsity)"),
}
# TorchTitan 0.3.0's MFU uses torchtitan.tools.utils.get_peak_flops(), which knows A100/H100/H200
# but falls back to the A100's 312 TFLOPS for GeForce cards: on an RTX 5080 that understates MFU
# 2.8x. The adapter's trainer replaces the peak with this catalogue's (datakit_titan.trainer).

GIB = 1024**3


def find_gpu(name: str) -> Gpu:
    key = name.lower().replace(" ", "").replace("-", "")
    if key not in GPUS:
        raise UserError(f"unknown GPU {name!r}", field="gpu", fix=f"use one of {sorted(GPUS)}")
    return GPUS[key]


def gpu_for_device_name(device_name: str) -> Gpu | None:
    """Catalogue entry for a CUDA device name such as 'NVIDIA GeForce RTX 5080'."""
    squashed = device_name.lower().replace(" ", "")
    for key, gpu in GPUS.items():
        if key in squashed:
            return gpu
    return None


# -- parameters ---------------------------------------------------------------------------
def param_counts(p: Preset, vocab_size: int) -> dict[str, int]:
    """Exact parameter counts of the llama3-family model (matches TorchTitan's built module)."""
    hd, d, f = p.head_dim, p.dim, p.ffn_hidden
    attn = d * p.n_heads * hd + 2 * d * p.n_kv_heads * hd + p.n_heads * hd * d  # wq, wk+wv, wo
    mlp = 3 * d * f  # SwiGLU: w1, w3 (d->f) and w2 (f->d)
    norms = 2 * d  # attention_norm, ffn_norm
    per_layer = attn + mlp + norms
    embedding = vocab_size * d
    lm_head = 0 if p.tie_embeddings else vocab_size * d
    total = p.n_layers * per_layer + embedding + lm_head + d  # + final norm
    return {"per_layer": per_layer, "layers": p.n_layers * per_layer, "embedding": embedding, "lm_head": lm_head, "total": total}


def flops_per_token(p: Preset, vocab_size: int, seq_len: int) -> dict[str, float]:
    """Training FLOPs per token = 6 N + 12 L d_attn T (TorchTitan's convention, same numbers).

    6N: forward 2 FLOPs per weight per token, backward 4. N counts every parameter that takes part
    in a matmul: all of them, except the input embedding when it is not tied (a lookup; tied, the
    one matrix is the output projection). Norm weights are in N too (negligible, as TorchTitan).
    Attention scores and the weighted sum add 2 x 2 x d_attn x T forward per layer, x3 with
    backward = 12 L d_attn T (full square, causal sparsity not subtracted).
    """
    c = param_counts(p, vocab_size)
    n_matmul = c["total"] if p.tie_embeddings else c["total"] - c["embedding"]
    dense = 6 * n_matmul
    attention = 12 * p.n_layers * p.n_heads * p.head_dim * seq_len
    return {"n_matmul": n_matmul, "dense": dense, "attention": attention, "total": dense + attention}


# -- memory -------------------------------------------------------------------------------
def activation_bytes_per_token_layer(p: Preset) -> int:
    """bf16 tensors autograd keeps per token per layer without checkpointing (flash attention:
    no L x L scores): norm inputs and outputs (4d), q,k,v and their RoPE'd q,k (2d + 4 d_kv),
    attention output (d), residual (d), SwiGLU w1/w3 outputs and their product (3f)."""
    d_kv = p.n_kv_heads * p.head_dim
    return 2 * (8 * p.dim + 4 * d_kv + 3 * p.ffn_hidden)


def optimizer_state_bytes(p: Preset, vocab_size: int, optimizer: str, state_bytes: int) -> int:
    """AdamW: two full moments. Adafactor: row + column second moments per matrix, a full one
    for vectors (norm weights); no first moment (torch.optim.Adafactor's default, beta1 off)."""
    c = param_counts(p, vocab_size)
    if optimizer == "adamw":
        return 2 * c["total"] * state_bytes
    hd, d, f = p.head_dim, p.dim, p.ffn_hidden
    mats = [(p.n_heads * hd + 2 * p.n_kv_heads * hd, d), (d, p.n_heads * hd), (f, d), (d, f), (f, d)]  # wqkv fused, wo, w1, w2, w3
    per_layer = sum(r + col for r, col in mats) + 2 * d
    emb = vocab_size + d
    return (p.n_layers * per_layer + emb * (1 if p.tie_embeddings else 2) + d) * state_bytes


def memory_per_gpu(
    p: Preset,
    vocab_size: int,
    *,
    seq_len: int,
    micro_batch: int,
    optimizer: str,
    param_dtype: str = "float32",
    activation_checkpointing: str = "none",
    n_gpus: int = 1,
    reshard_after_forward: str = "never",
) -> dict[str, float]:
    """Bytes per GPU under FSDP2 (weights, grads and optimizer state sharded over n_gpus).

    param_dtype float32: fp32 master weights, grads reduced in fp32, bf16 copies for compute
    (kept for the whole step when reshard_after_forward = never, the ZeRO-2 equivalent);
    bfloat16: pure bf16 weights, grads and optimizer state.

    compute_copy: the unsharded bf16 parameters FSDP2 all-gathers for compute, held next to each GPU's
    shard: every layer under reshard_after_forward = never (gathered in forward, freed after the
    layer's backward), else ~2 layers (the current one and the prefetched next). fp32 params always
    have one (the bf16 cast, on one GPU too); bf16 params have one only when sharded (n_gpus > 1):
    on one GPU FSDP is not applied and the bf16 weights are used as they are.
    """
    c = param_counts(p, vocab_size)
    n = c["total"]
    wb = 4 if param_dtype == "float32" else 2
    weights = n * wb / n_gpus
    compute_copy = 0.0
    if wb == 4 or n_gpus > 1:
        layers_gathered = p.n_layers if reshard_after_forward == "never" else 2
        compute_copy = 2 * (c["per_layer"] * layers_gathered + vocab_size * p.dim)
    grads = n * wb / n_gpus
    opt = optimizer_state_bytes(p, vocab_size, optimizer, wb) / n_gpus
    tokens = micro_batch * seq_len
    per_layer = activation_bytes_per_token_layer(p) * tokens
    if activation_checkpointing == "full":  # keep each layer's input, recompute one layer at a time
        acts = p.n_layers * 2 * p.dim * tokens + per_layer
    elif activation_checkpointing == "selective":  # TorchTitan's op-level SAC keeps matmul outputs: ~60%
        acts = 0.6 * p.n_layers * per_layer
    else:
        acts = p.n_layers * per_layer
    logits = tokens * vocab_size * (2 + 4)  # bf16 logits + fp32 log-softmax for the loss
    overhead = 1.0 * GIB  # CUDA context, allocator fragmentation, NCCL buffers
    total = weights + compute_copy + grads + opt + acts + logits + overhead
    return {
        "weights": weights, "compute_copy": compute_copy, "grads": grads, "optimizer": opt,
        "activations": acts, "logits": logits, "overhead": overhead, "total": total,
    }


# -- a phase ------------------------------------------------------------------------------
def phase_vocab(phase, vocab_size: int | None = None) -> int:
    p = PRESETS[phase.phase.model]
    return vocab_size or p.vocab_size or 65_536


def check_fits(phase, gpu: Gpu, n_gpus: int = 1, vocab_size: int | None = None) -> None:
    """Raise UserError when the phase's batch does not fit `gpu` by this estimate."""
    p = PRESETS[phase.phase.model]
    vocab = phase_vocab(phase, vocab_size)
    for i, st in enumerate(phase.stage):
        mem = memory_per_gpu(
            p, vocab, seq_len=st.seq_len, micro_batch=phase.batch.per_gpu, optimizer=phase.optimizer.name,
            param_dtype=phase.parallel.param_dtype, activation_checkpointing=phase.parallel.activation_checkpointing,
            n_gpus=n_gpus, reshard_after_forward=phase.parallel.fsdp_reshard_after_forward,
        )
        if mem["total"] > gpu.memory_gib * GIB:
            raise UserError(
                f"stage {i + 1} (seq_len {st.seq_len}, {phase.batch.per_gpu} rows/GPU) needs ~{mem['total'] / GIB:.1f} GiB per GPU "
                f"by `titan estimate`, the {gpu.name} has {gpu.memory_gib:g} GiB",
                file=phase.path, field="batch.per_gpu",
                fix="lower batch.per_gpu (raise grad_accum), use adafactor, param_dtype = \"bfloat16\", "
                "activation_checkpointing = \"full\", or more GPUs",
            )


def human(x: float, unit: str = "") -> str:
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            return f"{x / div:,.2f}{suf}{unit}"
    return f"{x:,.0f}{unit}"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:,.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:,.1f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 86400:,.1f} days"


def report(phase, *, gpu: str = "rtx5080", n_gpus: int = 1, mfu: float = 0.4, price_per_hour: float = 0.0, vocab_size: int | None = None) -> str:
    """The text `titan estimate` prints."""
    p = PRESETS[phase.phase.model]
    vocab = phase_vocab(phase, vocab_size)
    g = find_gpu(gpu)
    c = param_counts(p, vocab)
    untied = dict(p.__dict__, tie_embeddings=False)
    n_untied = param_counts(Preset(**untied), vocab)["total"]
    lines = [f"phase {phase.phase.name}: model {phase.phase.model}, {phase.phase.tokens:,} tokens on {n_gpus} x {g.name}"]
    basis = getattr(phase, "tokens_basis", "phase.tokens")
    if basis != "phase.tokens":
        lines.append(f"tokens: {phase.phase.tokens:,} = {basis}")
    lines.append(
        f"parameters: {c['total']:,} ({human(c['total'])}), embeddings {'tied' if p.tie_embeddings else 'untied'} "
        f"(untied would be {n_untied:,}); per layer {c['per_layer']:,} x {p.n_layers}, embedding {c['embedding']:,}"
    )
    total_s, total_flops = 0.0, 0.0
    for i, st in enumerate(phase.stage):
        tokens = phase.stage_tokens()[i]
        fl = flops_per_token(p, vocab, st.seq_len)
        tps = mfu * g.peak_bf16_tflops * 1e12 * n_gpus / fl["total"]
        secs = tokens / tps
        total_s += secs
        total_flops += tokens * fl["total"]
        gbs = phase.tokens_per_step(i, n_gpus)
        steps = phase.stage_steps(n_gpus)[i]
        lines.append(
            f"stage {i + 1}: seq_len {st.seq_len}, {tokens:,} tokens, global batch {gbs:,} tokens "
            f"({phase.batch.per_gpu} x {phase.batch.grad_accum} accum x {n_gpus} GPU x {st.seq_len}), {steps:,} steps"
        )
        lines.append(
            f"  FLOPs/token {human(fl['total'])} = 6N {human(fl['dense'])} + attention {human(fl['attention'])}; "
            f"at {mfu:.0%} MFU of {g.peak_bf16_tflops:g} TFLOPS: {tps:,.0f} tokens/s, {duration(secs)}"
        )
    gpu_hours = n_gpus * total_s / 3600
    lines.append(f"total: {total_flops:.3e} FLOPs, {duration(total_s)} wall-clock = {gpu_hours:,.1f} GPU-hours, "
                 f"${price_per_hour * gpu_hours:,.2f} at ${price_per_hour:g}/GPU-hour")
    seq = phase.stage[-1].seq_len
    lines.append(f"memory per GPU at seq_len {seq}, {phase.batch.per_gpu} rows (GiB; {g.name} has {g.memory_gib:g}):")
    lines.append(f"  {'optimizer':10} {'params':8} {'AC':9} {'weights':>8} {'grads':>7} {'optim':>7} {'acts':>7} {'logits':>7} {'total':>7}  fits")
    for opt in ("adamw", "adafactor"):
        for dtype in ("float32", "bfloat16"):
            for ac in ("none", "full"):
                m = memory_per_gpu(
                    p, vocab, seq_len=seq, micro_batch=phase.batch.per_gpu, optimizer=opt, param_dtype=dtype,
                    activation_checkpointing=ac, n_gpus=n_gpus, reshard_after_forward=phase.parallel.fsdp_reshard_after_forward,
                )
                ok = "yes" if m["total"] <= g.memory_gib * GIB else "no"
                mine = (opt, dtype, ac) == (phase.optimizer.name, phase.parallel.param_dtype, phase.parallel.activation_checkpointing)
                lines.append(
                    f"  {opt:10} {'fp32' if dtype == 'float32' else 'bf16':8} {ac:9} {(m['weights'] + m['compute_copy']) / GIB:8.1f} {m['grads'] / GIB:7.1f} "
                    f"{m['optimizer'] / GIB:7.1f} {m['activations'] / GIB:7.1f} {m['logits'] / GIB:7.1f} {m['total'] / GIB:7.1f}  {ok}"
                    + ("   <- this phase" if mine else "")
                )
    lines.append(
        "  (weights = this GPU's shard + the gathered bf16 compute copy (fp32 params; bf16 params on > 1 GPU); "
        "bf16 = pure bf16 weights, grads and state; activations bf16 with flash attention; +1 GiB context)"
    )
    return "\n".join(lines)
