"""Reference log-probs: computed once by a tiny TorchTitan llama3 over every DPO pair of a built mixture,
stored next to the data with the hashes they depend on, attached to the rows, and refused when they
belong to another checkpoint, tokenizer, data or RoPE setting."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import titan_fixture
import torch
from test_prefs_data import SEQ, copy_mixture, prefs_mixture, source_docs  # noqa: F401  (fixture)

from datakit.errors import UserError
from datakit.contract import load_manifest
from datakit.adapters.losses import ROLE_CHOSEN, ROLE_REJECTED, LossConfig, preference_loss, sequence_logps
from datakit_titan.dataset import PairDataset
from datakit_titan.prefs.refscore import compute_refscores, expected_reference, load_refscores, refscore_files, titan_forward

ROPE = {"theta": 10_000.0, "scaling": "none"}


def tiny_titan(vocab: int, seed: int = 0):
    return titan_fixture.tiny_titan(vocab, seed, cpu_attention=True).eval()  # dense block-causal SDPA on CPU


@pytest.fixture(scope="module")
def scored(prefs_mixture, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("refscore")
    mix = copy_mixture(prefs_mixture, root / "mix")
    model = tiny_titan(load_manifest(mix).tokenizer.vocab_size)
    ckpt = root / "ckpt" / "step-10"
    ckpt.mkdir(parents=True)
    torch.save(model.state_dict(), ckpt / "model.pt")
    model._skip_lm_head = True  # as `titan refscore` runs it: only completion positions reach the LM head
    meta = compute_refscores(titan_forward(model), mix, checkpoint=ckpt, rope=ROPE, batch_pairs=3, progress=False, lm_head=model.lm_head)
    model._skip_lm_head = False
    return mix, model, ckpt, meta


def test_refscores_are_each_pairs_sequence_logps_with_their_provenance(scored):
    mix, model, ckpt, meta = scored
    m = load_manifest(mix)
    assert list(meta) == ["dpo"]
    info = json.loads(refscore_files(mix, "dpo")[1].read_text())
    assert info["checkpoint_step"] == 10 and info["tokenizer_sha256"] == m.tokenizer.sha256 and info["spec_sha256"] == m.spec_sha256
    assert info["n_pairs"] == len(source_docs(mix, "dpo")) // 2 and info["rope"] == ROPE
    chosen, rejected = load_refscores(mix, m, "dpo", reference=expected_reference(ckpt, ROPE))
    docs = source_docs(mix, "dpo")
    with torch.no_grad():
        for pair in (0, 4, len(chosen) - 1):  # one example alone, unpadded, against the batched + padded pass
            for j, want in ((0, chosen[pair]), (1, rejected[pair])):
                tokens, loss = docs[2 * pair + j]
                t = torch.from_numpy(tokens.astype(np.int64))[None]
                pos = torch.arange(t.shape[1] - 1)[None]
                logits = titan_forward(model)(t[:, :-1], pos)
                labels = t[:, 1:].masked_fill(torch.from_numpy(loss[1:] == 0)[None], -100)
                got, n = sequence_logps(logits, labels)
                assert float(got) == pytest.approx(want, abs=1e-4) and int(n) == int(loss[1:].sum())
    assert (chosen < 0).all() and (rejected < 0).all()


def test_rows_carry_reference_logps_and_dpo_starts_at_log2(scored):
    """With the reference = the initial policy, every pair's DPO logit is 0 at step 0: loss log 2."""
    mix, model, ckpt, _ = scored
    ds = PairDataset(mix, seq_len=SEQ, batch_rows=4, loss="sft_dpo", reference=expected_reference(ckpt, ROPE), infinite=False)
    chosen, rejected = load_refscores(mix, load_manifest(mix), "dpo")
    rows = [r for r in ds if int(r[0]["role"]) in (ROLE_CHOSEN, ROLE_REJECTED)][:16]  # pairs stay adjacent
    for x, _ in rows:
        pair = int(x["pair_id"]) & 0xFFFFFFFF
        if int(x["role"]) == ROLE_CHOSEN:
            assert float(x["ref_logps"]) == pytest.approx(chosen[pair], rel=1e-6)
        if int(x["role"]) == ROLE_REJECTED:
            assert float(x["ref_logps"]) == pytest.approx(rejected[pair], rel=1e-6)
    batch = torch.utils.data.default_collate(rows)
    x, y = batch
    with torch.no_grad():
        logits = titan_forward(model)(x["input"], x["positions"])
        sums, n = sequence_logps(logits, y)
        _, m = preference_loss(sums, n, x["role"], x["ref_logps"], LossConfig())
    assert m["pairs"] == 8
    assert float(m["pair_loss"] / m["pairs"]) == pytest.approx(math.log(2), abs=1e-4)
    assert abs(float(m["reward_chosen"])) < 1e-4


def test_dpo_loss_reads_pairs_only(scored):
    """loss = "dpo": SFT and plain-document rows would add nothing to the loss, so none are read."""
    mix, _, ckpt, _ = scored
    rows = list(PairDataset(mix, seq_len=SEQ, batch_rows=2, loss="dpo", reference=expected_reference(ckpt, ROPE), infinite=False))
    roles = [int(x["role"]) for x, _ in rows]
    assert roles == [ROLE_CHOSEN, ROLE_REJECTED] * (len(source_docs(mix, "dpo")) // 2)


def test_reference_from_another_checkpoint_tokenizer_rope_or_data_is_refused(scored, tmp_path):
    mix, model, ckpt, _ = scored
    m = load_manifest(mix)
    other = tmp_path / "step-20"
    other.mkdir()
    torch.save({k: v + 1e-3 for k, v in model.state_dict().items()}, other / "model.pt")
    with pytest.raises(UserError, match="another checkpoint") as e:
        PairDataset(mix, seq_len=SEQ, batch_rows=4, loss="dpo", reference=expected_reference(other, ROPE), phase_file="p3.toml")
    assert e.value.field == "checkpoint_sha256" and "titan refscore p3.toml" in str(e.value)
    with pytest.raises(UserError, match="other RoPE settings"):
        load_refscores(mix, m, "dpo", reference=expected_reference(ckpt, {"theta": 500_000.0, "scaling": "none"}))
    retok = m.model_copy(deep=True)
    retok.tokenizer.sha256 = "f" * 64
    with pytest.raises(UserError, match="another tokenizer"):
        load_refscores(mix, retok, "dpo")
    rebuilt = m.model_copy(deep=True)
    rebuilt.source("dpo").shards[0].sha256 = "e" * 64
    with pytest.raises(UserError, match="other data"):
        load_refscores(mix, rebuilt, "dpo")
    bad = copy_mixture(mix, tmp_path / "corrupt")
    npz = refscore_files(bad, "dpo")[0]
    with np.load(npz) as z:
        arrays = dict(z)
    arrays["chosen_logps"][0] += 1.0
    np.savez(npz, **arrays)
    with pytest.raises(UserError, match="corrupted"):
        load_refscores(bad, m, "dpo")
    refscore_files(bad, "dpo")[1].unlink()  # an interrupted refscore run leaves no metadata: missing
    with pytest.raises(UserError, match="no reference log-probs"):
        load_refscores(bad, m, "dpo")


def test_interrupted_refscore_resumes_where_it_stopped_and_a_rerun_skips_done_sources(scored, tmp_path):
    import shutil

    mix, model, ckpt, _ = scored
    m = copy_mixture(mix, tmp_path / "mix")
    shutil.rmtree(m / "refscore")
    forward, pairs_run = titan_forward(model), []

    def counting(inputs, positions, fail_at=None):
        pairs_run.append(inputs.shape[0] // 2)
        if fail_at is not None and len(pairs_run) == fail_at:
            raise KeyboardInterrupt  # the user stops it, or the machine goes away
        return forward(inputs, positions)

    kw = dict(checkpoint=ckpt, rope=ROPE, batch_pairs=3, progress=False, save_every_s=0)
    with pytest.raises(KeyboardInterrupt):
        compute_refscores(lambda x, p: counting(x, p, fail_at=3), m, **kw)
    assert not refscore_files(m, "dpo")[1].exists()  # nothing half-written looks complete
    pairs_run.clear()
    compute_refscores(counting, m, **kw)
    n_pairs = len(source_docs(m, "dpo")) // 2
    assert sum(pairs_run) == n_pairs - 6  # the two finished batches are not recomputed
    got, want = load_refscores(m, load_manifest(m), "dpo"), load_refscores(mix, load_manifest(mix), "dpo")
    np.testing.assert_allclose(got[0], want[0], atol=1e-4)
    np.testing.assert_allclose(got[1], want[1], atol=1e-4)
    pairs_run.clear()
    compute_refscores(counting, m, **kw)
    assert pairs_run == []  # already scored with this checkpoint, tokenizer, data and RoPE
