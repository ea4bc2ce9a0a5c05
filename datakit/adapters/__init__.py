"""Adapters for an existing train.py: thin layers over `datakit.contract` (the built mixture's one reader).

    datakit.adapters.torch     PackedDataset / ExampleDataset: torch IterableDataset + Stateful (plain loop,
                               HF Trainer, Lightning, DeepSpeed; exact resume through state_dict)
    datakit.adapters.nanogpt   Batches.get_batch(split): nanoGPT's get_batch over built mixtures
    datakit.adapters.losses    the SFT + DPO (and ORPO) loss as plain PyTorch functions
    datakit.adapters.records   cost records of a run (cost.json) any loop can write

These need torch (the engine installs it; `pip install torch` for your own loop); datakit itself does not.
"""
