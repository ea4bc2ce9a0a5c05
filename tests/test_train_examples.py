"""Each train.py shape under examples/ trains a few CPU steps on a real built mixture (the `small` build:
gsm8k + arc samples); the plain loop and nanoGPT also resume exactly (a 3 + 2 step run = a 5 step run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(example: str, *args) -> list[dict]:
    r = subprocess.run([sys.executable, str(ROOT / "examples" / example), *map(str, args)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith('{"')]  # our JSON lines, not the Trainer's logs


@pytest.fixture(scope="module")
def prefs_mix(tmp_path_factory):
    """A small SFT + DPO mixture (layouts sft and dpo_pairs, loss on the completion) written through the contract."""
    from datakit.accounting.db import write_accounting_from_shards
    from datakit.contract.writer import write_mixture

    rng = np.random.default_rng(0)
    sft, dpo, masks_sft, masks_dpo = [], [], [], []
    for _ in range(16):
        prompt = [1, *rng.integers(3, 200, 10).tolist()]
        comp = [*rng.integers(3, 200, 8).tolist(), 2]
        sft.append(prompt + comp)
        masks_sft.append([0] * len(prompt) + [1] * len(comp))
        for c in (comp, [*rng.integers(3, 200, 6).tolist(), 2]):  # chosen, rejected
            dpo.append(prompt + c)
            masks_dpo.append([0] * len(prompt) + [1] * len(c))
    folder = tmp_path_factory.mktemp("prefs") / "mix"
    m = write_mixture(folder, {"sft": sft, "dpo": dpo}, vocab_size=256, seq_len=32, loss_masks={"sft": masks_sft, "dpo": masks_dpo},
                      layouts={"sft": "sft", "dpo": "dpo_pairs"})
    write_accounting_from_shards(folder, m)
    return folder


def test_plain_torch_loop_trains_and_resumes_exactly(small, tmp_path):
    mix = small / "mix"
    straight = run("plain_torch.py", "--mixture", mix, "--out", tmp_path / "a", "--steps", 5, "--seq-len", 64)
    run("plain_torch.py", "--mixture", mix, "--out", tmp_path / "b", "--steps", 3, "--seq-len", 64)
    resumed = run("plain_torch.py", "--mixture", mix, "--out", tmp_path / "b", "--steps", 5, "--seq-len", 64)
    assert [r["step"] for r in resumed] == [4, 5] and resumed == straight[3:]
    cost = json.loads((tmp_path / "b" / "cost.json").read_text())
    assert cost["steps"] == 5 and cost["tokens"] == 5 * 4 * 64


def test_plain_torch_sft_dpo_loss_outside_titan(prefs_mix, tmp_path):
    out = run("plain_torch.py", "--mixture", prefs_mix, "--out", tmp_path, "--steps", 3, "--loss", "sft_dpo")
    assert len(out) == 3 and all(np.isfinite(r["loss"]) for r in out)


def test_nanogpt_get_batch_trains_and_resumes_exactly(small, tmp_path):
    mix = small / "mix"
    straight = run("nanogpt_train.py", "--mixture", mix, "--out", tmp_path / "a", "--max-iters", 5)
    run("nanogpt_train.py", "--mixture", mix, "--out", tmp_path / "b", "--max-iters", 3)
    resumed = run("nanogpt_train.py", "--mixture", mix, "--out", tmp_path / "b", "--max-iters", 5)
    assert [r["loss"] for r in resumed if "iter" in r] == [r["loss"] for r in straight if "iter" in r][3:]


def test_hf_trainer_trains_and_its_loss_uses_our_shifted_labels(small, tmp_path):
    out = run("hf_trainer.py", "--mixture", small / "mix", "--out", tmp_path, "--steps", 3)
    assert len(out[-1]["losses"]) == 3 and (tmp_path / "checkpoint-3" / "datakit_data_state.json").exists()
    import torch
    import torch.nn.functional as F
    from transformers import LlamaConfig, LlamaForCausalLM

    from datakit.adapters.torch import PackedDataset

    ds = PackedDataset(small / "mix", seq_len=32, style="hf", verify=False)
    batch = torch.utils.data.default_collate([next(iter(ds)) for _ in range(2)])
    model = LlamaForCausalLM(LlamaConfig(vocab_size=4096, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=1, max_position_embeddings=64))
    out = model(**batch)
    want = F.cross_entropy(out.logits.flatten(0, 1).float(), batch["labels"].flatten(), ignore_index=-100)
    assert torch.allclose(out.loss, want, atol=1e-5)  # not shifted a second time


def test_lightning_trains(small, tmp_path):
    out = run("lightning_train.py", "--mixture", small / "mix", "--out", tmp_path, "--steps", 3)
    assert len(out[-1]["losses"]) == 3 and out[-1]["data_state"]["cursor"][0] > 0


def test_deepspeed_script_data_path_without_an_accelerator(small, tmp_path):
    out = run("deepspeed_train.py", "--mixture", small / "mix", "--out", tmp_path, "--steps", 2, "--no-deepspeed")
    assert [r["step"] for r in out] == [1, 2] and json.loads((tmp_path / "data_state.json").read_text())["cursor"]
