"""What a benchmark number is measured against: chance level and published anchors for models of this shape.

Anchors are quoted (not measured here) with the settings they were published under; ours run through
lm-evaluation-harness with the task files' own settings (gsm8k 5-shot exact match; ARC and HellaSwag 0-shot).
"""

from __future__ import annotations

# chance level of each task's headline metric (4 answer choices; gsm8k: a free-form number)
CHANCE = {"gsm8k": 0.0, "arc_easy": 0.25, "arc_challenge": 0.25, "hellaswag": 0.25}
HEADLINE = {"gsm8k": "exact_match,strict-match", "arc_easy": "acc_norm,none", "arc_challenge": "acc_norm,none", "hellaswag": "acc_norm,none"}
ANCHORS = {  # percent
    "SmolLM2-1.7B": ({"hellaswag": 68.7, "arc_avg": 60.5, "gsm8k": 31.0}, "SmolLM2 paper; GSM8K 5-shot"),
    "TinyLlama-1.1B 3T": ({"hellaswag": 59.2, "arc_challenge": 30.1, "arc_easy": 55.3}, "0-shot"),
    "Llama-3.2-1B": ({"hellaswag": 61.2, "gsm8k": 7.2}, "as published"),
}
