"""A plain PyTorch training loop on a built mixture, with exact resume (docs/migrating.md, shape 1).

    python examples/plain_torch.py --mixture data/mixtures/smoke --steps 20 --out outputs/plain
    python examples/plain_torch.py --mixture data/mixtures/smoke --steps 40 --out outputs/plain   # resumes at step 20
    python examples/plain_torch.py --mixture data/mixtures/smoke_sft_dpo --loss sft_dpo --steps 10 --out outputs/p3
"""

import argparse
import copy
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from datakit.adapters.losses import LossConfig, sequence_logps, sft_dpo_loss
from datakit.adapters.records import CostRecorder
from datakit.adapters.torch import ExampleDataset, PackedDataset


class TinyLM(nn.Module):
    """Stand-in for your model: embeddings, one causal transformer layer, LM head."""

    def __init__(self, vocab: int, d: int = 64, seq_len: int = 256):
        super().__init__()
        self.emb, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq_len, d)
        self.block = nn.TransformerEncoderLayer(d, 4, 4 * d, batch_first=True, dropout=0.0)
        self.head = nn.Linear(d, vocab)

    def forward(self, ids, positions):
        mask = nn.Transformer.generate_square_subsequent_mask(ids.shape[1])
        return self.head(self.block(self.emb(ids) + self.pos(positions), src_mask=mask, is_causal=True))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mixture", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=None, help="default: the mixture's seq_len")
    p.add_argument("--loss", choices=["lm", "sft_dpo"], default="lm")
    a = p.parse_args()
    torch.manual_seed(0)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if a.loss == "lm":
        ds = PackedDataset(a.mixture, seq_len=a.seq_len, rank=rank, world_size=world)  # one reader per DP rank
    else:  # one example per row; a DPO pair = two adjacent rows of one batch
        ds = ExampleDataset(a.mixture, seq_len=a.seq_len, batch_rows=a.batch, rank=rank, world_size=world)
    seq_len = a.seq_len or ds.manifest.seq_len
    model = TinyLM(ds.manifest.tokenizer.vocab_size, seq_len=seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ckpt = os.path.join(a.out, "checkpoint.pt")
    step = 0
    if os.path.exists(ckpt):  # exact resume: weights, optimizer and the data cursor
        state = torch.load(ckpt)
        model.load_state_dict(state["model"]), opt.load_state_dict(state["opt"]), ds.load_state_dict(state["data"])
        step = state["step"]
    reference = copy.deepcopy(model).eval().requires_grad_(False)  # DPO's reference (the engine: `titan refscore`)
    cost = CostRecorder(os.path.join(a.out, "cost.json"), gpu_type="cpu", usd_per_gpu_hour=0.0)
    batches = iter(torch.utils.data.DataLoader(ds, batch_size=a.batch))  # num_workers > 0: torchdata's StatefulDataLoader
    while step < a.steps:
        batch = next(batches)
        logits = model(batch["input_ids"], batch["position_ids"])
        if a.loss == "lm":  # labels are already shifted; -100 where no loss
            loss = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)
        else:
            with torch.no_grad():  # the reference model's log-probs of each row's completion
                ref, _ = sequence_logps(reference(batch["input_ids"], batch["position_ids"]), batch["labels"])
            loss, _ = sft_dpo_loss(logits, batch["labels"], batch["role"], ref, LossConfig("sft_dpo"))
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        cost.step(tokens=int(batch["input_ids"].numel()))
        print(json.dumps({"step": step, "loss": round(loss.item(), 4)}), flush=True)
    os.makedirs(a.out, exist_ok=True)
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "data": ds.state_dict(), "step": step}, ckpt)
    cost.close()


if __name__ == "__main__":
    main()
