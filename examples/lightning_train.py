"""PyTorch Lightning on a built mixture: the Stateful dataset inside a LightningModule's dataloader.

    python examples/lightning_train.py --mixture data/mixtures/smoke --steps 20 --out outputs/lightning
"""

import argparse
import json

import pytorch_lightning as pl
import torch
import torch.nn as nn
import torch.nn.functional as F

from datakit.adapters.torch import PackedDataset


class LitLM(pl.LightningModule):
    def __init__(self, vocab: int, seq_len: int, d: int = 64):
        super().__init__()
        self.emb, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq_len, d)
        self.block = nn.TransformerEncoderLayer(d, 4, 4 * d, batch_first=True, dropout=0.0)
        self.head = nn.Linear(d, vocab)
        self.losses = []

    def training_step(self, batch, _):
        ids = batch["input_ids"]
        h = self.block(self.emb(ids) + self.pos(batch["position_ids"]), src_mask=nn.Transformer.generate_square_subsequent_mask(ids.shape[1]), is_causal=True)
        loss = F.cross_entropy(self.head(h).flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)
        self.losses.append(loss.item())
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mixture", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    torch.manual_seed(0)
    ds = PackedDataset(a.mixture, seq_len=64)
    model = LitLM(ds.manifest.tokenizer.vocab_size, 64)
    trainer = pl.Trainer(max_steps=a.steps, accelerator="cpu", default_root_dir=a.out, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False)
    trainer.fit(model, torch.utils.data.DataLoader(ds, batch_size=4))
    print(json.dumps({"losses": model.losses, "data_state": ds.state_dict()}), flush=True)


if __name__ == "__main__":
    main()
