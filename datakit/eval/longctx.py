"""Long-context probes (phase 3): passkey retrieval prompts and position buckets for held-out loss.

Passkey retrieval (Mohtashami & Jaggi 2023, the prompt long-context papers reuse): a 5-digit key hidden at
a depth inside repeated filler, then asked for. Prompts are made locally from a seed, sized in tokens of
the model's own tokenizer, so a probe at 8,192 really fills 8,192 positions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

INTRO = "There is an important piece of information hidden inside a lot of irrelevant text. Find it and memorize it.\n"
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
QUESTION = "\nWhat is the pass key? The pass key is"
DEFAULT_LENGTHS = (2048, 4096, 8192)
DEFAULT_BUCKETS = ((0, 2048), (2048, 4096), (4096, 8192))
DEPTHS = (0.1, 0.5, 0.9)


@dataclass
class Passkey:
    length: int  # tokens of the whole prompt (BOS included)
    depth: float  # where the key sits, as a fraction of the filler
    key: str
    prompt: str


def passkey_prompts(count_tokens, lengths=DEFAULT_LENGTHS, per_length: int = 3, seed: int = 0, depths=DEPTHS,
                    answer_tokens: int = 0) -> list[Passkey]:
    """`per_length` prompts per length (depths cycling through `depths`); count_tokens(text) -> tokens
    the model sees for text (BOS included). Each prompt is the longest that, with `answer_tokens` more
    for the answer, fits the length."""
    rng = random.Random(f"passkey:{seed}")
    out = []
    filler_tokens = max(1, count_tokens(FILLER * 8) - count_tokens(""))  # tokens per 8 fillers, without BOS
    for length in lengths:
        for i in range(per_length):
            key = str(rng.randint(10000, 99999))
            depth = depths[i % len(depths)]
            needle = f"The pass key is {key}. Remember it. {key} is the pass key. "
            fixed = count_tokens(INTRO + needle + QUESTION)
            room = length - answer_tokens
            n = max(0, (room - fixed) * 8 // filler_tokens)
            while n > 0:
                before = int(n * depth)
                prompt = INTRO + FILLER * before + needle + FILLER * (n - before) + QUESTION
                if count_tokens(prompt) <= room:
                    break
                n -= 1
            before = int(n * depth)
            prompt = INTRO + FILLER * before + needle + FILLER * (n - before) + QUESTION
            out.append(Passkey(length, depth, key, prompt))
    return out


def passkey_correct(key: str, generated: str) -> bool:
    """The first number the model writes after the question is the key."""
    digits = "".join(ch for ch in generated.strip()[:16] if ch.isdigit() or ch == " ").split()
    return bool(digits) and digits[0] == key


def bucket_name(lo: int, hi: int) -> str:
    def k(x: int) -> str:
        return f"{x // 1024}K" if x and x % 1024 == 0 else str(x)

    return f"{k(lo)}-{k(hi)}"
