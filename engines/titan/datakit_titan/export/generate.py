"""Run a GGUF through llama.cpp's C++ code (llama-cpp-python's bindings): tokenize, logits, generate.

Tokenization parses the planning tags and adds BOS, as the HF tokenizer does; generation samples in
llama.cpp (greedy at temperature 0) and stops at </s>, at </answer> (the end of a planning answer)
or after max_tokens. Pieces are printed with their tags.
"""

from __future__ import annotations

import codecs
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datakit.errors import UserError

STOP_TAG = "</answer>"


def quiet_llama_cpp() -> None:
    """llama.cpp logs every tensor it loads; keep warnings and errors only."""
    import llama_cpp  # noqa: F401  (installs its log callback)

    logging.getLogger("llama-cpp-python").setLevel(logging.WARNING)


def open_gguf(path: str | Path, *, n_ctx: int = 0, n_threads: int | None = None, logits_all: bool = False, seed: int = 0):
    """A llama.cpp model + context for a GGUF file (n_ctx 0: the model's trained context). Close it after use."""
    path = Path(path)
    if not path.is_file():
        raise UserError("GGUF file does not exist", file=path, fix="export one first: titan export <run> --to gguf --out <folder>")
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise UserError("not a GGUF file", file=path, fix="pass a .gguf file written by `titan export --to gguf`")
    quiet_llama_cpp()
    from llama_cpp import Llama

    try:
        return Llama(str(path), n_ctx=n_ctx, n_batch=512, n_threads=n_threads, n_threads_batch=n_threads, logits_all=logits_all,
                     seed=seed, verbose=False)
    except ValueError as e:  # llama-cpp-python's "Failed to load model from file"
        raise UserError(f"llama.cpp could not load it: {e}", file=path, fix="re-export it with `titan export --to gguf`") from e


def tokenize(llm, text: str) -> list[int]:
    """Ids as the HF tokenizer gives them: BOS first, planning tags as their own tokens."""
    return llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)


def logits(llm, tokens: list[int]) -> np.ndarray:
    """Logits [len(tokens), vocab] from one pass over `tokens` (the model must be opened with logits_all)."""
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


@dataclass
class Generation:
    text: str = ""
    tokens: list[int] = field(default_factory=list)
    n_prompt: int = 0
    prompt_s: float = 0.0  # prompt processing + first token
    gen_s: float = 0.0  # the tokens after the first
    stop: str = "length"  # "eos" | "</answer>" | "length"

    @property
    def prompt_tps(self) -> float:
        return self.n_prompt / self.prompt_s if self.prompt_s else 0.0

    @property
    def gen_tps(self) -> float:
        return (len(self.tokens) - 1) / self.gen_s if self.gen_s and len(self.tokens) > 1 else 0.0


def generate(llm, prompt: str | list[int], *, max_tokens: int = 256, temperature: float = 0.0, top_k: int = 40, top_p: float = 0.95,
             min_p: float = 0.05, repeat_penalty: float = 1.0, stop_at_answer: bool = True, on_piece=None) -> Generation:
    """Sample up to max_tokens after `prompt` in llama.cpp; on_piece(str) gets each decoded piece as it comes."""
    ids = tokenize(llm, prompt) if isinstance(prompt, str) else list(prompt)
    n_ctx = llm.n_ctx()
    if len(ids) >= n_ctx:
        raise UserError(f"the prompt is {len(ids):,} tokens, the context {n_ctx:,}", field="prompt", fix="shorten it or raise --ctx")
    max_tokens = min(max_tokens, n_ctx - len(ids))
    stop_id = llm.tokenize(STOP_TAG.encode(), add_bos=False, special=True)
    stop_id = stop_id[0] if stop_at_answer and len(stop_id) == 1 else None
    out = Generation(n_prompt=len(ids))
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two tokens
    t0 = time.perf_counter()
    t_first = None
    for tok in _tokens(llm, ids, temperature, top_k, top_p, min_p, repeat_penalty):
        if t_first is None:
            t_first = time.perf_counter()
        if tok == llm.token_eos():
            out.stop = "eos"
            break
        out.tokens.append(tok)
        if on_piece:
            on_piece(utf8.decode(llm.detokenize([tok], prev_tokens=ids + out.tokens[:-1], special=True)))
        if tok == stop_id:
            out.stop = STOP_TAG
            break
        if len(out.tokens) >= max_tokens:
            break
    t_end = time.perf_counter()
    out.prompt_s = (t_first or t_end) - t0
    out.gen_s = t_end - (t_first or t_end)
    out.text = llm.detokenize(out.tokens, prev_tokens=ids, special=True).decode("utf-8", "replace")
    return out


def _tokens(llm, ids, temperature, top_k, top_p, min_p, repeat_penalty) -> Iterator[int]:
    yield from llm.generate(ids, temp=temperature, top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty, reset=True)
