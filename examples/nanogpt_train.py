"""nanoGPT's train.py loop, reading a built mixture instead of train.bin / val.bin (docs/migrating.md, shape 3).

    python examples/nanogpt_train.py --mixture data/mixtures/smoke --max-iters 20 --out outputs/nanogpt

The only data change to nanoGPT: `get_batch` comes from datakit.adapters.nanogpt.Batches, and its state goes
into the checkpoint next to the model's (nanoGPT's random offsets cannot resume; this can, exactly).
"""

import argparse
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from datakit.adapters.nanogpt import Batches


class GPT(nn.Module):  # stand-in for nanoGPT's model.GPT: forward(idx, targets) -> (logits, loss)
    def __init__(self, vocab_size: int, block_size: int, n_embd: int = 64):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab_size, n_embd), nn.Embedding(block_size, n_embd)
        self.h = nn.TransformerEncoderLayer(n_embd, 4, 4 * n_embd, batch_first=True, dropout=0.0)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        logits = self.lm_head(self.h(x, src_mask=nn.Transformer.generate_square_subsequent_mask(T), is_causal=True))
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1) if targets is not None else None
        return logits, loss


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mixture", required=True)
    p.add_argument("--val", default=None, help="a held-out built mixture (default: the train mixture, own cursor)")
    p.add_argument("--out", required=True)
    p.add_argument("--max-iters", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--block-size", type=int, default=64)
    a = p.parse_args()
    torch.manual_seed(1337)
    batches = Batches(a.mixture, a.val, batch_size=a.batch_size, block_size=a.block_size, device="cpu",
                      rank=int(os.environ.get("RANK", 0)), world_size=int(os.environ.get("WORLD_SIZE", 1)))
    get_batch = batches.get_batch
    model = GPT(_vocab(a.mixture), a.block_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ckpt_path, iter_num = os.path.join(a.out, "ckpt.pt"), 0
    if os.path.exists(ckpt_path):
        ckpt = torch.load(ckpt_path)
        model.load_state_dict(ckpt["model"]), optimizer.load_state_dict(ckpt["optimizer"])
        batches.load_state_dict(ckpt["data"])
        iter_num = ckpt["iter_num"]
    while iter_num < a.max_iters:
        X, Y = get_batch("train")
        _, loss = model(X, Y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        iter_num += 1
        print(json.dumps({"iter": iter_num, "loss": round(loss.item(), 4)}), flush=True)
    with torch.no_grad():
        print(json.dumps({"val_loss": round(model(*get_batch("val"))[1].item(), 4)}), flush=True)
    os.makedirs(a.out, exist_ok=True)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "data": batches.state_dict(), "iter_num": iter_num}, ckpt_path)


def _vocab(mixture: str) -> int:
    from datakit.contract import load_manifest

    return load_manifest(mixture).tokenizer.vocab_size  # nanoGPT reads meta.pkl; the manifest says it


if __name__ == "__main__":
    main()
