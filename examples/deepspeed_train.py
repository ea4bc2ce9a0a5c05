"""A DeepSpeed training script on a built mixture (docs/migrating.md, shape 4).

    deepspeed examples/deepspeed_train.py --mixture data/mixtures/pretrain --steps 1000 --out outputs/ds
    python examples/deepspeed_train.py --mixture data/mixtures/smoke --steps 5 --out outputs/ds --no-deepspeed   # CPU check

The data side is what changes: each DP rank opens a PackedDataset with its rank / world size (no
DistributedSampler), and the dataset cursor is saved with `client_state` next to DeepSpeed's checkpoint,
so `load_checkpoint` resumes the data exactly. `--no-deepspeed` runs the same loop with a torch optimizer
(DeepSpeed needs an accelerator; CI has none).
"""

import argparse
import json
import os

import torch
import torch.nn.functional as F

from datakit.adapters.torch import PackedDataset
from plain_torch import TinyLM  # the stand-in model of examples/plain_torch.py (this folder is on sys.path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mixture", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--no-deepspeed", action="store_true")
    p.add_argument("--local_rank", type=int, default=0)  # the deepspeed launcher passes it
    a = p.parse_args()
    torch.manual_seed(0)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    ds = PackedDataset(a.mixture, seq_len=64, rank=rank, world_size=world)
    model = TinyLM(ds.manifest.tokenizer.vocab_size, seq_len=64)
    if a.no_deepspeed:
        engine, opt = model, torch.optim.AdamW(model.parameters(), lr=1e-3)
    else:
        import deepspeed

        config = {"train_micro_batch_size_per_gpu": 4, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}}, "bf16": {"enabled": True}}
        engine, opt, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=config)
        _, client = engine.load_checkpoint(a.out)
        if client:
            ds.load_state_dict(client["data"])
    batches = iter(torch.utils.data.DataLoader(ds, batch_size=4))
    for step in range(a.steps):
        b = next(batches)
        loss = F.cross_entropy(engine(b["input_ids"], b["position_ids"]).flatten(0, 1), b["labels"].flatten(), ignore_index=-100)
        if a.no_deepspeed:
            opt.zero_grad(), loss.backward(), opt.step()
        else:
            engine.backward(loss)
            engine.step()
        print(json.dumps({"step": step + 1, "loss": round(loss.item(), 4)}), flush=True)
    if not a.no_deepspeed:
        engine.save_checkpoint(a.out, client_state={"data": ds.state_dict()})
    else:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "data_state.json"), "w") as f:
            json.dump(ds.state_dict(), f)


if __name__ == "__main__":
    main()
