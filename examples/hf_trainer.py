"""HF Trainer on a built mixture (docs/migrating.md, shape 2): no tokenization, no group_texts; the
dataset is Stateful and its cursor is saved with every checkpoint, so a resumed run continues exactly.

    python examples/hf_trainer.py --mixture data/mixtures/smoke --steps 20 --out outputs/hf
"""

import argparse
import json
import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments

from datakit.adapters.torch import PackedDataset

DATA_STATE = "datakit_data_state.json"


class SaveDataState(TrainerCallback):
    """Write the dataset cursor into every checkpoint folder; the Trainer itself only knows map-style datasets."""

    def __init__(self, ds: PackedDataset):
        self.ds = ds

    def on_save(self, args, state, control, **kw):
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        with open(os.path.join(folder, DATA_STATE), "w") as f:
            json.dump(self.ds.state_dict(), f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mixture", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--resume", default=None, help="a checkpoint-N folder of --out")
    a = p.parse_args()
    # style="hf": input_ids + labels + shift_labels (labels are already shifted: transformers must not shift them again)
    ds = PackedDataset(a.mixture, seq_len=64, style="hf")
    if a.resume:
        with open(os.path.join(a.resume, DATA_STATE)) as f:
            ds.load_state_dict(json.load(f))
    vocab = ds.manifest.tokenizer.vocab_size
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=64, bos_token_id=ds.manifest.tokenizer.bos_id,
                      eos_token_id=ds.manifest.tokenizer.eos_id, pad_token_id=ds.manifest.tokenizer.pad_id)
    torch.manual_seed(0)
    args = TrainingArguments(output_dir=a.out, max_steps=a.steps, per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1,
                             save_steps=a.steps, report_to=[], use_cpu=True, ignore_data_skip=True,  # the cursor resumes, no skipping
                             dataloader_num_workers=0)
    trainer = Trainer(model=LlamaForCausalLM(cfg), args=args, train_dataset=ds, callbacks=[SaveDataState(ds)])
    trainer.train(resume_from_checkpoint=a.resume)
    print(json.dumps({"losses": [h["loss"] for h in trainer.state.log_history if "loss" in h]}), flush=True)


if __name__ == "__main__":
    main()
