"""Phase 3: SFT + DPO (or ORPO) on long-context examples in one TorchTitan run.

    loss.py      sequence log-probs over completion tokens, the SFT / DPO / ORPO terms
    pairs.py     a Stateful dataset of fixed-length rows that keeps each pair's two rows together
    refscore.py  reference log-probs of every DPO pair, computed once and checked by hash
"""
