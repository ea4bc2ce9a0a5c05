"""Is an export the trained model? The same texts through TorchTitan, transformers and llama.cpp:

- tokenization: our tokenizer.json (HF `tokenizers`), the export's AutoTokenizer and llama.cpp's
  tokenizer give the same ids, BOS included;
- logits: max |difference| per position against TorchTitan's fp32 forward;
- greedy continuation: llama.cpp's tokens equal TorchTitan's argmax decoding.

`titan export --check` prints these figures; the export tests bound them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datakit_titan.export.checkpoint import Trained, titan_logits

# mixed text / code / planning, unicode and digits: what the tokenizers must agree on
CHECK_TEXTS = [
    "<problem>A 24-tonne truck must drive from Depot to Kelso. Find the shortest legal route.</problem><thinking>Step 1: "
    "The truck weighs 24 t, so roads under 24 t are closed.</thinking><answer>Drive Depot -> Kelso, 30 km.</answer>",
    "def fib(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n"
    "        a, b = b, a + b\n    return a\n\nprint(fib(10))  # 55\n",
    "The mitochondria is the powerhouse of the cell; it's where 1,234,567 ATP molecules (roughly) are made — naïve café "
    "résumé, 東京, emojis 🙂 and    tabs\tand\r\nnewlines.",
]


def our_ids(t: Trained, text: str) -> list[int]:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(t.tokenizer)).encode(text).ids


def greedy_titan(model, ids: list[int], n: int) -> list[int]:
    """TorchTitan's argmax continuation of `ids` (full forward per token: fine for checks on small models)."""
    import torch

    seq = list(ids)
    for _ in range(n):
        seq.append(int(titan_logits(model, torch.tensor([seq]))[0, -1].argmax()))
    return seq[len(ids):]


def check_hf(t: Trained, model, hf_dir: str | Path, texts: list[str] = CHECK_TEXTS) -> dict:
    """HF export vs TorchTitan (fp32): tokenization equality and the largest logit difference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    hf = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    same_ids, diff = True, 0.0
    for text in texts:
        ids = tok(text).input_ids
        same_ids &= ids == our_ids(t, text)
        x = torch.tensor([ids[: t.context]])
        with torch.no_grad():
            diff = max(diff, float((hf(x).logits.float() - titan_logits(model, x)).abs().max()))
    return {"tokenization_equal": same_ids, "max_abs_logit_diff": diff}


def check_gguf(t: Trained, model, gguf_path: str | Path, texts: list[str] = CHECK_TEXTS, greedy_tokens: int = 24) -> dict:
    """A GGUF in llama.cpp vs TorchTitan: tokenization, largest logit difference, greedy continuation."""
    import torch

    from datakit_titan.export.generate import generate, logits, open_gguf, tokenize

    llm = open_gguf(gguf_path, n_ctx=t.context, logits_all=True, n_threads=None)
    try:
        same_ids, diff, greedy_equal = True, 0.0, True
        for text in texts:
            ids = tokenize(llm, text)
            same_ids &= ids == our_ids(t, text)
            ids = ids[: t.context // 2]
            diff = max(diff, float(np.abs(logits(llm, ids) - titan_logits(model, torch.tensor([ids]))[0].numpy()).max()))
            prompt = ids[: min(len(ids), 16)]
            ours = generate(llm, prompt, max_tokens=greedy_tokens, temperature=0.0, stop_at_answer=False).tokens
            theirs = greedy_titan(model, prompt, greedy_tokens)
            theirs = theirs[: theirs.index(t.manifest.tokenizer.eos_id)] if t.manifest.tokenizer.eos_id in theirs else theirs
            greedy_equal &= ours == theirs
        return {"tokenization_equal": same_ids, "max_abs_logit_diff": diff, "greedy_equal": greedy_equal}
    finally:
        llm.close()
