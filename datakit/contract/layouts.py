"""How a source's documents are laid out in its shards (`layout` in the manifest), and the rows a trainer
makes of them.

    docs       plain documents `<s> text </s>`; a `.ds.loss` mask, where present, marks tokens without loss
    sft        one document per example: `<s> [context <sep>] prompt completion </s>`; `.ds.loss` is 1 on
               completion + `</s>` only
    dpo_pairs  documents 2i and 2i+1 are the chosen and rejected example of pair i; both hold the same
               `<s> [context <sep>] prompt` tokens, then their own completion + `</s>` (loss 1 there only)

Rows use the already-shifted convention: `labels[t]` is the token after `inputs[t]`, IGNORE_INDEX where
no loss applies. A row of example rows carries a role (ROLE_*): what the SFT + DPO loss does with it.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

Layout = Literal["docs", "sft", "dpo_pairs"]
LAYOUTS: tuple[str, ...] = get_args(Layout)
EXAMPLE_LAYOUTS = ("sft", "dpo_pairs")  # one example per row, never packed with another
PAIR_LAYOUT = "dpo_pairs"

IGNORE_INDEX = -100  # label of a position without loss (PyTorch's cross_entropy default, TorchTitan's too)
ROLE_PAD, ROLE_SFT, ROLE_CHOSEN, ROLE_REJECTED = -1, 0, 1, 2


def is_example_layout(layout: str) -> bool:
    """Whether documents of this layout are examples (SFT / DPO: one per row, loss on the completion only)."""
    return layout in EXAMPLE_LAYOUTS


def example_row(tokens: np.ndarray, loss: np.ndarray, seq_len: int, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One example -> (inputs, labels, positions), int64 arrays of seq_len, right-padded with pad_id.

    labels[t] = tokens[t + 1] where loss[t + 1] is 1, else IGNORE_INDEX; positions count 0..n-1 over the
    example and restart at 0 over the padding (its own block-causal document)."""
    tokens = np.asarray(tokens, np.int64)
    n = len(tokens) - 1
    if n > seq_len:
        raise ValueError(f"example of {len(tokens)} tokens does not fit seq_len {seq_len}")
    inputs = np.full(seq_len, pad_id, np.int64)
    labels = np.full(seq_len, IGNORE_INDEX, np.int64)
    inputs[:n] = tokens[:-1]
    labels[:n] = np.where(np.asarray(loss)[1:] != 0, tokens[1:], IGNORE_INDEX)
    positions = np.concatenate([np.arange(n), np.arange(seq_len - n)]).astype(np.int64)
    return inputs, labels, positions
