"""Deterministic sampling: targets, epochs and hub subsampling."""

import numpy as np

from datakit.mix.sample import choose_documents
from datakit.mix.steps import keep_fraction
from datakit.mix.stages import sample_rates
from datakit.spec import parse_spec


def test_whole_epochs_are_permutations_and_remainder_is_a_prefix():
    lengths = np.array([5, 7, 11, 13, 17])
    order, epochs = choose_documents(lengths, target_tokens=2 * lengths.sum() + 20, seed=3, source="s")
    assert sorted(order[epochs == 0]) == sorted(order[epochs == 1]) == list(range(5))
    tail = order[epochs == 2]
    assert lengths[tail].sum() >= 20 and lengths[tail[:-1]].sum() < 20


def test_same_seed_same_choice_other_seed_other_choice():
    lengths = np.arange(1, 200)
    a = choose_documents(lengths, 5000, 1, "s")[0]
    assert (a == choose_documents(lengths, 5000, 1, "s")[0]).all()
    assert not np.array_equal(a, choose_documents(lengths, 5000, 2, "s")[0])


def test_keep_fraction_is_deterministic_and_near_rate():
    ids = [f"src/file#{i}" for i in range(20000)]
    kept = [keep_fraction(i, 7, 0.25) for i in ids]
    assert kept == [keep_fraction(i, 7, 0.25) for i in ids]
    assert 0.23 < sum(kept) / len(ids) < 0.27


def test_big_hub_source_is_subsampled_to_its_target():
    spec = parse_spec({
        "mixture": {"name": "p", "tokenizer": "t.json", "output": "o"},
        "source": [{"name": "fw", "uri": "hf://HuggingFaceTB/smollm-corpus", "config": "fineweb-edu-dedup",
                    "format": "fineweb-edu", "tokens": "22B"}],
    })
    assert abs(sample_rates(spec)["fw"] - 0.11) < 1e-9  # 22B of 220B, plus 10% margin
