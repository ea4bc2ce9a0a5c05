"""What hub datasets can supply, before downloading them: documents and tokens from the dataset cards.

These figures let `datakit mix plan` refuse an impossible target (gsm8k: 10B tokens) before any download.
Token counts on cards come from other tokenizers (SmolLM's 49k, GPT-2); ours differ by a few percent, so the
planner labels them "card" and the build counts the truth. Small supervised sets have no token count on
their card: we give rows x a measured mean length of our formatter's output ("estimate").
A spec can override any figure with `tokens_available` / `docs_available`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Known:
    docs: int
    tokens: int
    basis: str  # where the figure comes from


_M, _B = 10**6, 10**9
CATALOG: dict[tuple[str, str | None, str], Known] = {
    # HuggingFaceTB/smollm-corpus card: fineweb-edu-dedup 220B tokens / 190M docs; cosmopedia-v2 28B / 39M;
    # python-edu 4B tokens / 7.7M files.
    ("HuggingFaceTB/smollm-corpus", "fineweb-edu-dedup", "train"): Known(190 * _M, 220 * _B, "card"),
    ("HuggingFaceTB/smollm-corpus", "cosmopedia-v2", "train"): Known(39 * _M, 28 * _B, "card"),
    ("HuggingFaceTB/smollm-corpus", "python-edu", "train"): Known(7_700_000, 4 * _B, "card"),
    # HuggingFaceTB/finemath card: finemath-3plus 34B tokens / 21.4M docs; finemath-4plus 9.6B / 6.7M;
    # infiwebmath-3plus 20.5B / 13.9M; infiwebmath-4plus 8.5B / 6.3M.
    ("HuggingFaceTB/finemath", "finemath-3plus", "train"): Known(21_400_000, 34 * _B, "card"),
    ("HuggingFaceTB/finemath", "finemath-4plus", "train"): Known(6_700_000, 9_600_000_000, "card"),
    ("HuggingFaceTB/finemath", "infiwebmath-3plus", "train"): Known(13_900_000, 20_500_000_000, "card"),
    ("HuggingFaceTB/finemath", "infiwebmath-4plus", "train"): Known(6_300_000, 8_500_000_000, "card"),
    # HuggingFaceTB/stack-edu card: 125B tokens over 15 languages; Python is the largest subset (~21.8B).
    ("HuggingFaceTB/stack-edu", "Python", "train"): Known(25_300_000, 21_800_000_000, "card"),
    ("HuggingFaceTB/stack-edu", None, "train"): Known(167_000_000, 125 * _B, "card"),
    # Supervised reasoning sets: rows from the cards x mean formatted length (question + worked answer).
    ("openai/gsm8k", "main", "train"): Known(7_473, 7_473 * 180, "estimate: 7,473 rows x ~180 tokens"),
    ("openai/gsm8k", "main", "test"): Known(1_319, 1_319 * 180, "estimate: 1,319 rows x ~180 tokens"),
    ("codeparrot/apps", None, "train"): Known(5_000, 5_000 * 700, "estimate: 5,000 problems x ~700 tokens (statement + one solution)"),
    ("codeparrot/apps", "all", "train"): Known(5_000, 5_000 * 700, "estimate: 5,000 problems x ~700 tokens (statement + one solution)"),
    ("allenai/ai2_arc", "ARC-Challenge", "train"): Known(1_119, 1_119 * 70, "estimate: 1,119 rows x ~70 tokens"),
    ("allenai/ai2_arc", "ARC-Easy", "train"): Known(2_251, 2_251 * 60, "estimate: 2,251 rows x ~60 tokens"),
    ("microsoft/orca-math-word-problems-200k", None, "train"): Known(200_035, 200_035 * 250, "estimate: 200,035 rows x ~250 tokens"),
    ("meta-math/MetaMathQA", None, "train"): Known(395_000, 395_000 * 250, "estimate: 395,000 rows x ~250 tokens"),
    # google/boolq card: train 9,427 / validation 3,270 rows; passages average ~108 tokens, questions ~9 (BoolQ
    # paper, Clark et al. 2019): formatted passage + question + answer ~150 tokens.
    ("google/boolq", None, "train"): Known(9_427, 9_427 * 150, "estimate: 9,427 rows x ~150 tokens"),
    ("google/boolq", None, "validation"): Known(3_270, 3_270 * 150, "estimate: 3,270 rows x ~150 tokens"),
    # deepmind/math_dataset (the plan's "deepmind/mathematics_dataset"; Saxton et al. 2019): 56 modules, each
    # 1,999,998 train and 10,000 test rows (card). A formatted question + short answer is ~50 tokens in the
    # composed modules (a few chained sub-problems) and ~30 in arithmetic__mixed.
    **{("deepmind/math_dataset", m, "train"): Known(1_999_998, 1_999_998 * n, f"estimate: 1,999,998 rows x ~{n} tokens")
       for m, n in (("algebra__linear_2d_composed", 50), ("calculus__differentiate_composed", 50),
                    ("numbers__gcd_composed", 50), ("arithmetic__mixed", 30))},
    # HuggingFaceTB/smoltalk2, config Mid (SmolLM3's mid-training reasoning traces; the plan's "SmolLM3-blueprint"
    # is the recipe that names them, docs/samples.md): card num_examples and num_bytes; tokens = bytes / ~4.
    ("HuggingFaceTB/smoltalk2", "Mid", "OpenThoughts3_1.2M"):
        Known(1_135_104, 56_341_153_994 // 4, "estimate: 56.3 GB (card num_bytes) / ~4 bytes per token"),
    ("HuggingFaceTB/smoltalk2", "Mid", "Llama_Nemotron_Post_Training_Dataset_reasoning_r1"):
        Known(3_644_790, 61_605_080_860 // 4, "estimate: 61.6 GB (card num_bytes) / ~4 bytes per token"),
}


@dataclass(frozen=True)
class CurateAssumption:
    """What mixture-wide curation is assumed to remove from a source before it is read (the build measures
    the truth). dedup: fraction removed by exact + MinHash dedup; decontaminate: fraction removed by
    decontamination; basis: where the assumption comes from."""

    dedup: float
    decontaminate: float
    basis: str


DEFAULT_CURATE = CurateAssumption(0.01, 0.001, "assumption (no published figure for this set): ~1% near-duplicates, "
                                  "~0.1% sharing a 13-gram with an eval item")
_UPSTREAM_DEDUP = "upstream already deduplicated ({}), so ~0% left for our dedup; decontamination ~0.1% assumed (no published figure)"
CURATE_ASSUMPTIONS: dict[tuple[str, str | None], CurateAssumption] = {
    ("HuggingFaceTB/smollm-corpus", "fineweb-edu-dedup"): CurateAssumption(
        0.0, 0.001, _UPSTREAM_DEDUP.format("smollm-corpus card: FineWeb-Edu-Dedup is FineWeb-Edu deduplicated")),
    ("HuggingFaceTB/smollm-corpus", "python-edu"): CurateAssumption(
        0.0, 0.001, _UPSTREAM_DEDUP.format("from The Stack v2, near-deduplicated upstream: StarCoder2 paper")),
    ("HuggingFaceTB/stack-edu", None): CurateAssumption(
        0.0, 0.001, _UPSTREAM_DEDUP.format("from StarCoder2Data (The Stack v2), near-deduplicated upstream: StarCoder2 paper")),
}


def curate_assumption(repo: str, config: str | None) -> CurateAssumption:
    return CURATE_ASSUMPTIONS.get((repo, config)) or CURATE_ASSUMPTIONS.get((repo, None)) or DEFAULT_CURATE


def lookup(repo: str, config: str | None, split: str) -> Known | None:
    return CATALOG.get((repo, config, split)) or CATALOG.get((repo, None, split))
