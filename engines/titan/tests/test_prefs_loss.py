"""The SFT + DPO loss against TRL's own code, on the same model, logits and masks; and its gradients
against a float64 reference.

TRL (1.16) computes the DPO loss inside `DPOTrainer._compute_loss` (trl/trainer/dpo_trainer.py): the
model is called with `fused_lm_head=True` (trl.trainer.utils.add_fused_lm_head) and returns per-token
log-probs of the completion; `loss_type=["sigmoid", "sft"], loss_weights=[0.5, 1.0]` sums 0.5 x the
sigmoid DPO term and 1.0 x the NLL of the chosen completions (RPO). We run that very method with a
minimal stand-in for the trainer object (the attributes `_compute_loss` reads: beta, loss types and
weights, precomputed reference log-probs, an accelerator whose gather is the identity on one
process), so the comparison is with TRL's code, not with a re-derivation of it.
"""

from __future__ import annotations

import types
from collections import defaultdict

import pytest
import torch
from titan_fixture import tiny_titan

from datakit.adapters.losses import (
    IGNORE_INDEX,
    ROLE_CHOSEN,
    ROLE_REJECTED,
    ROLE_SFT,
    LossConfig,
    preference_loss,
    sequence_logps,
    sequence_logps_from_hidden,
    summarize,
    token_logps,
)

VOCAB = 97


def tiny_hf_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(cfg).float()


def pair_batch(seed: int = 0, n_pairs: int = 3):
    """TRL's padded DPO batch: rows 0..P-1 chosen, P..2P-1 rejected, right-padded with attention_mask 0;
    completion_mask 1 on completion tokens. Lengths differ per row; one completion is a single token."""
    g = torch.Generator().manual_seed(seed)
    rows_c, rows_r, comp_c, comp_r = [], [], [], []
    for i in range(n_pairs):
        prompt = [1] + torch.randint(3, VOCAB, (int(torch.randint(2, 9, (1,), generator=g)),), generator=g).tolist()
        n_c = 1 if i == 0 else int(torch.randint(2, 12, (1,), generator=g))
        n_r = int(torch.randint(2, 12, (1,), generator=g))
        c = torch.randint(3, VOCAB, (n_c,), generator=g).tolist() + [2]
        r = torch.randint(3, VOCAB, (n_r,), generator=g).tolist() + [2]
        rows_c.append(prompt + c)
        rows_r.append(prompt + r)
        comp_c.append([0] * len(prompt) + [1] * len(c))
        comp_r.append([0] * len(prompt) + [1] * len(r))
    rows, comps = rows_c + rows_r, comp_c + comp_r
    T = max(map(len, rows))
    ids = torch.tensor([r + [0] * (T - len(r)) for r in rows])
    attn = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
    comp = torch.tensor([c + [0] * (T - len(c)) for c in comps])
    return {"input_ids": ids, "attention_mask": attn, "completion_mask": comp}


def trl_loss(model, inputs, ref_c, ref_r, loss_types, loss_weights, beta=0.1):
    """TRL's DPOTrainer._compute_loss, run on a stand-in trainer with the attributes it reads."""
    from trl import DPOTrainer
    from trl.trainer.utils import add_fused_lm_head

    if not getattr(model, "_datakit_fused", False):
        add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
        model._datakit_fused = True
    acc = types.SimpleNamespace(device=torch.device("cpu"), gather=lambda x: x, gather_for_metrics=lambda x: x)
    stub = types.SimpleNamespace(
        model=model, accelerator=acc, aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True,
        f_divergence_type="reverse_kl", loss_types=list(loss_types), loss_weights=list(loss_weights), beta=beta,
        use_weighting=False, label_smoothing=0.0, _metrics={"train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
    )
    loss = DPOTrainer._compute_loss(stub, model, {**inputs, "ref_chosen_logps": ref_c, "ref_rejected_logps": ref_r}, False)
    return loss, {k: v[-1] for k, v in stub._metrics["train"].items()}


def ours(model, inputs, ref_c, ref_r, config: LossConfig):
    """Our loss on the same batch, laid out as our dataset does: pairs adjacent (c0, r0, c1, r1, ...),
    labels already shifted, IGNORE_INDEX off the completion."""
    P = inputs["input_ids"].shape[0] // 2
    order = torch.stack([torch.arange(P), torch.arange(P) + P], 1).reshape(-1)
    ids, attn, comp = (inputs[k][order] for k in ("input_ids", "attention_mask", "completion_mask"))
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
    labels = ids[:, 1:].masked_fill(comp[:, 1:] == 0, IGNORE_INDEX)
    sums, n = sequence_logps(logits, labels)
    role = torch.tensor([ROLE_CHOSEN, ROLE_REJECTED] * P)
    ref = torch.stack([ref_c, ref_r], 1).reshape(-1)
    loss, metric_sums = preference_loss(sums, n, role, ref, config)
    return loss, summarize(metric_sums, config)


def ref_logps(P, seed=1):
    g = torch.Generator().manual_seed(seed)
    return -20 * torch.rand(P, generator=g) - 5, -20 * torch.rand(P, generator=g) - 5


@pytest.mark.parametrize("seed", [0, 1])
def test_sft_plus_dpo_equals_trl_rpo_loss_and_metrics(seed):
    model = tiny_hf_llama(seed)
    inputs = pair_batch(seed, n_pairs=3)
    ref_c, ref_r = ref_logps(3, seed)
    expect, m = trl_loss(model, inputs, ref_c, ref_r, ["sigmoid", "sft"], [0.5, 1.0])
    model.zero_grad()
    expect.backward()
    expect_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    got, metrics = ours(model, inputs, ref_c, ref_r, LossConfig(loss="sft_dpo", beta=0.1, w_sft=1.0, w_dpo=0.5))
    got.backward()
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-6)
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert metrics[key] == pytest.approx(m[key], rel=1e-5, abs=1e-6), key
    for p, e in zip(model.parameters(), expect_grads):
        torch.testing.assert_close(p.grad, e, rtol=1e-4, atol=1e-6)


def test_each_term_alone_equals_trl():
    model = tiny_hf_llama(3)
    inputs = pair_batch(3, n_pairs=4)
    ref_c, ref_r = ref_logps(4, 3)
    sigmoid, _ = trl_loss(model, inputs, ref_c, ref_r, ["sigmoid"], [1.0], beta=0.25)
    sft, _ = trl_loss(model, inputs, ref_c, ref_r, ["sft"], [1.0])
    got_dpo, m_dpo = ours(model, inputs, ref_c, ref_r, LossConfig(loss="dpo", beta=0.25))
    torch.testing.assert_close(got_dpo, sigmoid, rtol=1e-5, atol=1e-6)
    assert m_dpo["dpo"] == pytest.approx(float(sigmoid.detach()), rel=1e-5)
    # loss = "sft" on pairs: the NLL of the chosen completions only, like TRL's "sft" loss type
    got_sft, m_sft = ours(model, inputs, ref_c, ref_r, LossConfig(loss="sft"))
    torch.testing.assert_close(got_sft, sft, rtol=1e-5, atol=1e-6)
    assert m_sft["sft"] == pytest.approx(float(sft.detach()), rel=1e-5)
    # the weighted sum is the weighted sum of the two
    both, _ = ours(model, inputs, ref_c, ref_r, LossConfig(loss="sft_dpo", beta=0.25, w_sft=0.3, w_dpo=2.0))
    torch.testing.assert_close(both, 0.3 * sft + 2.0 * sigmoid, rtol=1e-5, atol=1e-6)


def test_orpo_equals_trl_odds_ratio_loss():
    """ORPO (Hong et al. 2024): NLL of chosen + lambda * -logsigmoid(log odds ratio) on length-normalised
    log-probs; compared with trl.experimental.orpo.ORPOTrainer.odds_ratio_loss (its beta is lambda)."""
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer

    model = tiny_hf_llama(4)
    inputs = pair_batch(4, n_pairs=3)
    P = 3
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits[:, :-1]
        labels = inputs["input_ids"][:, 1:].masked_fill(inputs["completion_mask"][:, 1:] == 0, IGNORE_INDEX)
        sums, n = sequence_logps(logits, labels)
    avg = sums / n
    stub = types.SimpleNamespace(beta=0.1, accelerator=types.SimpleNamespace(device=torch.device("cpu")))
    losses, rc, rr, _, _ = ORPOTrainer.odds_ratio_loss(stub, avg[:P], avg[P:])
    nll = -sums[:P].sum() / n[:P].sum()
    expect = nll - losses.mean()  # ORPOTrainer.get_batch_loss_metrics: loss = policy_nll_loss - losses.mean()
    got, metrics = ours(model, inputs, torch.zeros(P), torch.zeros(P), LossConfig(loss="orpo", orpo_lambda=0.1, beta=0.1))
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-6)
    assert metrics["rewards/chosen"] == pytest.approx(float(rc.mean()), rel=1e-5)
    assert metrics["rewards/rejected"] == pytest.approx(float(rr.mean()), rel=1e-5)


def test_masking_and_padding_edge_cases():
    """Padding, prompt and label = IGNORE_INDEX never count; a padding row and SFT rows mix with pairs;
    pad id 0 inside a completion is a real target; an all-masked batch still backpropagates (zero)."""
    torch.manual_seed(0)
    B, T, V = 5, 7, 11
    logits = torch.randn(B, T, V, requires_grad=True)
    labels = torch.randint(0, V, (B, T))
    labels[0, :3] = IGNORE_INDEX  # prompt
    labels[1, 5:] = IGNORE_INDEX  # padding
    labels[2, :] = IGNORE_INDEX  # padding row
    labels[3, 2] = 0  # pad id as a real target
    sums, n = sequence_logps(logits, labels)
    naive = torch.log_softmax(logits.double(), -1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    mask = labels != IGNORE_INDEX
    torch.testing.assert_close(sums.double(), (naive * mask).sum(-1))
    assert n.tolist() == mask.sum(-1).tolist() and n[2] == 0 and sums[2] == 0
    # an explicit loss mask narrows further
    lm = torch.ones(B, T, dtype=torch.bool)
    lm[4, :4] = False
    s2, n2 = sequence_logps(logits, labels, lm)
    assert n2[4] == n[4] - 4 and torch.allclose(s2[:4], sums[:4])
    # rows: sft, pad, chosen, rejected, sft -> the SFT term spans rows 0, 2 (chosen) and 4
    role = torch.tensor([ROLE_SFT, -1, ROLE_CHOSEN, ROLE_REJECTED, ROLE_SFT])
    labels2 = labels.clone()
    labels2[1] = IGNORE_INDEX
    sums, n = sequence_logps(logits, labels2)
    ref = torch.tensor([0.0, 0.0, -3.0, -4.0, 0.0])
    loss, m = preference_loss(sums, n, role, ref, LossConfig())
    sft = -(sums[0] + sums[2] + sums[4]) / (n[0] + n[2] + n[4])
    dpo = -torch.nn.functional.logsigmoid(0.1 * ((sums[2] + 3.0) - (sums[3] + 4.0)))
    torch.testing.assert_close(loss, 1.0 * sft + 0.5 * dpo)
    assert m["pairs"] == 1 and m["sft_tokens"] == n[0] + n[2] + n[4]
    # a pair split across batches is our bug, refused loudly
    with pytest.raises(ValueError, match="followed by its rejected"):
        preference_loss(sums[:3], n[:3], role[:3], ref[:3], LossConfig())
    # all masked: finite zero loss, zero grads
    empty = torch.full((2, T), IGNORE_INDEX)
    s, n = sequence_logps(logits[:2], empty)
    loss, _ = preference_loss(s, n, torch.tensor([ROLE_SFT, ROLE_SFT]), None, LossConfig(loss="sft"))
    loss.backward()
    assert float(loss.detach()) == 0.0 and logits.grad.abs().sum() == 0


def test_missing_reference_is_an_error():
    with pytest.raises(ValueError, match="reference"):
        preference_loss(torch.zeros(2), torch.ones(2), torch.tensor([ROLE_CHOSEN, ROLE_REJECTED]), None, LossConfig(loss="dpo"))


def test_token_logps_gradcheck_float64():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 6, (3, 4))
    labels[0, 0] = IGNORE_INDEX
    assert torch.autograd.gradcheck(lambda x: token_logps(x, labels, chunk_rows=5), (logits,))


def test_hidden_path_projects_only_targets_and_matches_full_logits():
    torch.manual_seed(0)
    hidden = torch.randn(3, 9, 8, requires_grad=True)
    head = torch.nn.Linear(8, 13, bias=False)
    labels = torch.randint(0, 13, (3, 9))
    labels[:, :5] = IGNORE_INDEX
    calls = []
    head.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    s1, n1 = sequence_logps_from_hidden(hidden, head, labels)
    s2, n2 = sequence_logps(head(hidden), labels)
    assert calls[0] == int((labels != IGNORE_INDEX).sum())  # 12 rows projected, not 27
    torch.testing.assert_close(s1, s2)
    g1 = torch.autograd.grad(s1.sum(), hidden)[0]
    g2 = torch.autograd.grad(s2.sum(), hidden)[0]
    torch.testing.assert_close(g1, g2)


def test_combined_loss_gradients_match_float64_reference_on_a_tiny_titan_model():
    """float32 gradients of the whole SFT + DPO loss through TorchTitan's llama3 (tiny preset) equal the
    float64 recomputation with a plain log_softmax (an independent reference) to float32 precision."""
    from datakit_titan import cpu

    cpu.enable()  # SDPA with the block-causal mask on CPU (no FlexAttention backward on CPU)
    model = tiny_titan(vocab=VOCAB)
    inputs = pair_batch(5, n_pairs=2)
    ids = inputs["input_ids"][[0, 2, 1, 3]]
    comp = inputs["completion_mask"][[0, 2, 1, 3]]
    x, labels = ids[:, :-1], ids[:, 1:].masked_fill(comp[:, 1:] == 0, IGNORE_INDEX)
    pos = torch.arange(x.shape[1]).expand_as(x)
    role = torch.tensor([ROLE_CHOSEN, ROLE_REJECTED] * 2)
    ref = torch.tensor([-30.0, -28.0, -25.0, -35.0])
    cfg = LossConfig()

    def grads(m, dtype, naive):
        for p in m.parameters():  # parameters only: the RoPE cache stays complex
            p.data = p.data.to(dtype)
        m.zero_grad()
        logits = m(x, attention_masks=m.get_attention_masks(positions=pos), positions=pos)
        if naive:
            lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
            mask = labels != IGNORE_INDEX
            sums, n = (lp * mask).sum(-1), mask.sum(-1)
        else:
            sums, n = sequence_logps(logits, labels)
        loss, _ = preference_loss(sums, n, role, ref.to(dtype), cfg)
        loss.backward()
        return loss.detach().double(), {k: p.grad.detach().double().clone() for k, p in m.named_parameters()}

    l32, g32 = grads(model, torch.float32, naive=False)
    l64, g64 = grads(model, torch.float64, naive=True)
    assert abs(float(l32 - l64)) < 1e-5
    for k in g64:
        scale = g64[k].abs().max().clamp(min=1e-6)
        assert (g32[k] - g64[k]).abs().max() / scale < 1e-3, k


@pytest.mark.parametrize("loss", ["sft_dpo", "orpo", "sft", "dpo"])
def test_micro_batches_with_global_counts_sum_to_the_whole_batch_loss(loss):
    """What PrefsTrainer does under gradient accumulation / data parallelism: each micro-batch divides its
    sums by the step's global SFT-token and pair counts; the sum over micro-batches is the whole batch's loss."""
    torch.manual_seed(0)
    B, T, V = 8, 6, 9
    logits = torch.randn(B, T, V, requires_grad=True)
    labels = torch.randint(0, V, (B, T))
    labels[:, :2] = IGNORE_INDEX
    labels[0, 2:4] = IGNORE_INDEX  # rows with different numbers of targets
    role = torch.tensor([ROLE_SFT, ROLE_CHOSEN, ROLE_REJECTED, ROLE_SFT, ROLE_CHOSEN, ROLE_REJECTED, ROLE_CHOSEN, ROLE_REJECTED])
    ref = -10 * torch.rand(B)
    cfg = LossConfig(loss=loss)
    sums, n = sequence_logps(logits, labels)
    whole, _ = preference_loss(sums, n, role, ref, cfg)
    g_whole = torch.autograd.grad(whole, logits)[0]
    sft_rows = (role == ROLE_SFT) | (role == ROLE_CHOSEN)
    sft_tokens, n_pairs = (n * sft_rows).sum(), (role == ROLE_CHOSEN).sum()
    parts = []
    for rows in (slice(0, 3), slice(3, 6), slice(6, 8)):  # 3 micro-batches, pairs whole
        s, k = sequence_logps(logits[rows], labels[rows])
        part, _ = preference_loss(s, k, role[rows], ref[rows], cfg, sft_tokens=sft_tokens, n_pairs=n_pairs)
        parts.append(part)
    total = sum(parts)
    torch.testing.assert_close(total, whole)
    torch.testing.assert_close(torch.autograd.grad(total, logits)[0], g_whole)
