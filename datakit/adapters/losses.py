"""SFT + DPO (and ORPO) losses over rows of completion tokens: plain PyTorch, usable in any train.py.

    from datakit.adapters.losses import LossConfig, sft_dpo_loss

    logits = model(batch["input_ids"])                                  # [B, T, V]
    loss, sums = sft_dpo_loss(logits, batch["labels"], batch["role"], batch["ref_logps"], LossConfig("sft_dpo"))

Rows come from `datakit.contract.cursors.ExampleCursor` (the engine's and `datakit.adapters.torch`'s
example datasets): every row is one example, `labels[t]` is the token after `input[t]` (the
already-shifted convention) and IGNORE_INDEX where the token is not a training target (context,
prompt, padding). A row's `role` says what it is:

    ROLE_SFT      an SFT example (or a plain document): its targets count in the SFT term
    ROLE_CHOSEN   the chosen half of a pair; the rejected half is the next row
    ROLE_REJECTED the rejected half
    ROLE_PAD      a padding row (no targets)

Terms (Rafailov et al. 2023; Pang et al. 2024; Hong et al. 2024):

    pi_c, pi_r      sequence log-probs: sum of log p(token) over a row's completion tokens
    sft             mean NLL over the target tokens of SFT and chosen rows (TRL's "sft" loss type:
                    chosen completions only; a rejected completion is never imitated)
    dpo             -logsigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))   per pair, mean
    orpo            sft + lambda * -logsigmoid(log_odds), on length-normalised log-probs
                    log_odds = (a_c - a_r) - (log(1 - e^a_c) - log(1 - e^a_r)),  a = pi / n_tokens

    loss = "sft_dpo": w_sft * sft + w_dpo * dpo   (the plan: 1.0 and 0.5; TRL's
           loss_type=["sigmoid", "sft"], loss_weights=[0.5, 1.0], i.e. RPO)
           "sft": sft    "dpo": dpo    "orpo": sft + lambda * odds-ratio term

Memory. A row's log-probs need log_softmax over the vocabulary only at its target tokens.
`sequence_logps_from_hidden` projects just those positions through the LM head (at 8192
context with a few hundred completion tokens that is a few percent of the logits), and
`token_logps` computes logit[label] - logsumexp(logits) chunk by chunk in fp32 with its own
backward (softmax - onehot, recomputed per chunk), so no [B, T, V] fp32 tensor is ever held.
The DPO term couples whole sequences, so it must not go through TorchTitan's chunked loss
wrapper (which backpropagates chunk by chunk, i.e. assumes a loss that is a sum over chunks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from datakit.contract.layouts import IGNORE_INDEX, ROLE_CHOSEN, ROLE_PAD, ROLE_REJECTED, ROLE_SFT

LOSSES = ("sft_dpo", "sft", "dpo", "orpo")
NEEDS_REFERENCE = {"sft_dpo", "dpo"}
NEEDS_PAIRS = {"sft_dpo", "dpo", "orpo"}


# -- per-token log-probs, memory-aware ------------------------------------------------------------
class _TokenLogps(torch.autograd.Function):
    """log p(label) = logit[label] - logsumexp(logits), in fp32 (or fp64), `chunk_rows` rows at a time.

    Saves the logits (in their own dtype) and one logsumexp per row; the backward recomputes the
    softmax per chunk: d logp / d logits = onehot(label) - softmax(logits).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor, chunk_rows: int) -> torch.Tensor:
        V = logits.shape[-1]
        flat = logits.reshape(-1, V)
        idx = labels.reshape(-1).clamp(min=0).unsqueeze(1)
        cdt = torch.promote_types(logits.dtype, torch.float32)
        out = torch.empty(flat.shape[0], dtype=cdt, device=logits.device)
        lse = torch.empty_like(out)
        for a in range(0, flat.shape[0], chunk_rows):
            x = flat[a : a + chunk_rows].to(cdt)
            lse[a : a + chunk_rows] = torch.logsumexp(x, dim=-1)
            out[a : a + chunk_rows] = x.gather(1, idx[a : a + chunk_rows]).squeeze(1) - lse[a : a + chunk_rows]
        ctx.save_for_backward(flat, idx, lse)
        ctx.chunk_rows, ctx.shape = chunk_rows, logits.shape
        return out.view(labels.shape)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        flat, idx, lse = ctx.saved_tensors
        g = grad_out.reshape(-1, 1).to(lse.dtype)
        grad = torch.empty_like(flat)
        for a in range(0, flat.shape[0], ctx.chunk_rows):
            b = a + ctx.chunk_rows
            gi = torch.exp(flat[a:b].to(lse.dtype) - lse[a:b, None]).mul_(-g[a:b])
            gi.scatter_add_(1, idx[a:b], g[a:b])
            grad[a:b] = gi.to(grad.dtype)
        return grad.view(ctx.shape), None, None


def token_logps(logits: torch.Tensor, labels: torch.Tensor, *, chunk_rows: int = 1024) -> torch.Tensor:
    """log p(labels[..., t] | logits[..., t, :]) for every position (IGNORE_INDEX labels give the log-prob
    of token 0: mask them). logits [..., V], labels [...]; the result is fp32 (fp64 for fp64 logits)."""
    return _TokenLogps.apply(logits, labels, chunk_rows)


def sequence_logps(
    logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor | None = None, *, chunk_rows: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence log-probs of each row's completion: (sum_logps [B], n_tokens [B]).

    logits: [B, T, V], position t predicting labels[:, t] (labels already shifted, as TorchTitan's
    datasets emit them). loss_mask: [B, T], 1 where labels[:, t] is a completion (target) token;
    default labels != IGNORE_INDEX.
    """
    mask = (labels != IGNORE_INDEX) if loss_mask is None else loss_mask.bool() & (labels != IGNORE_INDEX)
    per_token = token_logps(logits, labels, chunk_rows=chunk_rows)
    return (per_token * mask).sum(-1), mask.sum(-1)


def sequence_logps_from_hidden(
    hidden: torch.Tensor, lm_head, labels: torch.Tensor, loss_mask: torch.Tensor | None = None, *, chunk_rows: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same as `sequence_logps`, but from the final hidden states [B, T, D]: only target positions go
    through `lm_head` (a module mapping [N, D] -> [N, V]), so masked context never becomes logits."""
    mask = (labels != IGNORE_INDEX) if loss_mask is None else loss_mask.bool() & (labels != IGNORE_INDEX)
    B = labels.shape[0]
    rows = torch.arange(B, device=labels.device).unsqueeze(1).expand_as(labels)[mask]
    logits = lm_head(hidden[mask])  # [N, V]; N = completion tokens in the batch
    per_token = token_logps(logits, labels[mask], chunk_rows=chunk_rows)
    sums = torch.zeros(B, dtype=per_token.dtype, device=per_token.device).index_add(0, rows, per_token)
    return sums, mask.sum(-1)


# -- the loss -------------------------------------------------------------------------------------
@dataclass
class LossConfig:
    """loss: "sft_dpo" | "sft" | "dpo" | "orpo". beta: DPO temperature (how far the policy may move from
    the reference). w_sft / w_dpo: weights of the two terms in "sft_dpo". orpo_lambda: weight of ORPO's
    odds-ratio term."""

    loss: Literal["sft_dpo", "sft", "dpo", "orpo"] = "sft_dpo"
    beta: float = 0.1
    w_sft: float = 1.0
    w_dpo: float = 0.5
    orpo_lambda: float = 0.1

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; one of {LOSSES}")


def pair_rows(role: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the chosen rows and of their rejected partners (the next row)."""
    chosen = (role == ROLE_CHOSEN).nonzero().squeeze(1)
    rejected = chosen + 1
    if len(chosen) and (rejected[-1] >= len(role) or (role[rejected] != ROLE_REJECTED).any()):
        raise ValueError("every chosen row must be followed by its rejected row in the same batch")
    if int((role == ROLE_REJECTED).sum()) != len(chosen):
        raise ValueError("a rejected row without its chosen row in the batch")
    return chosen, rejected


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - e^x) for x < 0, stable on both sides of -ln 2 (Maechler 2012)."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def preference_loss(
    sum_logps: torch.Tensor,
    n_tokens: torch.Tensor,
    role: torch.Tensor,
    ref_logps: torch.Tensor | None,
    config: LossConfig,
    *,
    sft_tokens: torch.Tensor | float | None = None,
    n_pairs: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one micro-batch and its metric sums.

    sum_logps, n_tokens: per row, from `sequence_logps`. role: per row (ROLE_*). ref_logps: per row,
    the reference model's sequence log-prob (needed by "dpo" / "sft_dpo" for pair rows).
    sft_tokens / n_pairs: the normalisers of the SFT and pair terms. Default: this micro-batch's own
    counts (a mean, as TRL computes it). A trainer with gradient accumulation or data parallelism
    passes the step's global counts, so that summing the micro-batch losses over accumulation steps
    and ranks gives the step's mean.

    Returns (loss, sums): sums are detached metric sums over this micro-batch ("sft_nll", "sft_tokens",
    "pair_loss", "pairs", "reward_chosen", "reward_rejected", "reward_correct"); `summarize` turns sums
    added over micro-batches and ranks into the logged means.
    """
    sum_logps = sum_logps.float() if sum_logps.dtype not in (torch.float32, torch.float64) else sum_logps
    chosen, rejected = pair_rows(role)
    sft_rows = (role == ROLE_SFT) | (role == ROLE_CHOSEN)
    sft_nll = -(sum_logps * sft_rows).sum()
    n_sft = (n_tokens * sft_rows).sum()
    zero = sum_logps.sum() * 0  # keeps the graph connected when a term is empty
    sums = {"sft_nll": sft_nll.detach(), "sft_tokens": n_sft.detach().to(sum_logps.dtype),
            "pairs": torch.tensor(float(len(chosen)), dtype=sum_logps.dtype, device=sum_logps.device)}
    norm_sft = (n_sft.clamp(min=1) if sft_tokens is None else sft_tokens)
    norm_pairs = (max(len(chosen), 1) if n_pairs is None else n_pairs)
    sft = sft_nll / norm_sft if config.loss != "dpo" else zero

    pair = zero
    pi_c, pi_r = sum_logps[chosen], sum_logps[rejected]
    if config.loss in NEEDS_REFERENCE:
        if ref_logps is None:
            raise ValueError(f"loss {config.loss!r} needs reference log-probs")
        ref = ref_logps.to(sum_logps.dtype)
        logr_c, logr_r = pi_c - ref[chosen], pi_r - ref[rejected]
        per_pair = -F.logsigmoid(config.beta * (logr_c - logr_r))
        rew_c, rew_r = config.beta * logr_c.detach(), config.beta * logr_r.detach()
        weight = config.w_dpo if config.loss == "sft_dpo" else 1.0
    elif config.loss == "orpo":
        a_c = pi_c / n_tokens[chosen].clamp(min=1)
        a_r = pi_r / n_tokens[rejected].clamp(min=1)
        log_odds = (a_c - a_r) - (log1mexp(a_c) - log1mexp(a_r))
        per_pair = -F.logsigmoid(log_odds)
        rew_c, rew_r = config.beta * a_c.detach(), config.beta * a_r.detach()  # TRL's ORPO rewards
        weight = config.orpo_lambda
    else:  # "sft": pairs (if any) contribute their chosen half to the SFT term only
        per_pair = rew_c = rew_r = pi_c.detach() * 0
        weight = 0.0
    if config.loss in NEEDS_PAIRS and len(chosen):
        pair = per_pair.sum() / norm_pairs
    sums.update(pair_loss=per_pair.detach().sum(), reward_chosen=rew_c.sum(), reward_rejected=rew_r.sum(),
                reward_correct=(rew_c > rew_r).to(sum_logps.dtype).sum())
    sft_weight = config.w_sft if config.loss == "sft_dpo" else 1.0
    loss = sft_weight * sft + weight * pair + zero
    return loss, sums


def summarize(sums: dict[str, torch.Tensor | float], config: LossConfig) -> dict[str, float]:
    """Logged metrics from metric sums (added over micro-batches and ranks): sft (mean NLL), dpo (or
    orpo: mean pair term), rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies."""
    f = {k: float(v) for k, v in sums.items()}
    pairs, toks = max(f["pairs"], 1.0), max(f["sft_tokens"], 1.0)
    out = {"sft": f["sft_nll"] / toks}
    if config.loss != "sft" and f["pairs"]:
        out["orpo" if config.loss == "orpo" else "dpo"] = f["pair_loss"] / pairs
        out["rewards/chosen"] = f["reward_chosen"] / pairs
        out["rewards/rejected"] = f["reward_rejected"] / pairs
        out["rewards/margins"] = (f["reward_chosen"] - f["reward_rejected"]) / pairs
        out["rewards/accuracies"] = f["reward_correct"] / pairs
    return out


def sft_dpo_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    role: torch.Tensor,
    ref_logps: torch.Tensor | None = None,
    config: LossConfig | None = None,
    *,
    sft_tokens: torch.Tensor | float | None = None,
    n_pairs: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The phase-3 loss of a batch of example rows, from the model's logits: `sequence_logps` then
    `preference_loss` (default config: sft + 0.5 * dpo, beta 0.1).

    logits [B, T, V]; labels [B, T] (shifted, IGNORE_INDEX off the completion); role [B] (ROLE_*);
    ref_logps [B]: the reference model's sequence log-probs of each row's completion (`titan refscore`
    computes them once; needed for "dpo" / "sft_dpo")."""
    sums_logps, n_tokens = sequence_logps(logits, labels)
    return preference_loss(sums_logps, n_tokens, role, ref_logps, config or LossConfig(), sft_tokens=sft_tokens, n_pairs=n_pairs)


__all__ = ["IGNORE_INDEX", "ROLE_PAD", "ROLE_SFT", "ROLE_CHOSEN", "ROLE_REJECTED", "LOSSES", "NEEDS_REFERENCE", "NEEDS_PAIRS",
           "LossConfig", "token_logps", "sequence_logps", "sequence_logps_from_hidden", "preference_loss", "sft_dpo_loss", "summarize"]
