"""The mixture's tokenizer as TorchTitan sees it: ids only (shards are already tokenized)."""

from __future__ import annotations

from dataclasses import dataclass

from torchtitan.components.tokenizer import BaseTokenizer

from datakit.contract import load_manifest


class MixtureTokenizer(BaseTokenizer):
    """Vocabulary size and special ids from the manifest; TorchTitan builds it with
    tokenizer_path = the mixture folder (Trainer.Config.hf_assets_path)."""

    @dataclass(kw_only=True, slots=True)
    class Config(BaseTokenizer.Config):
        pass

    def __init__(self, config: Config | None = None, *, tokenizer_path: str):
        super().__init__()
        info = load_manifest(tokenizer_path).tokenizer
        self.vocab_size, self.bos_id, self.eos_id, self.pad_id = info.vocab_size, info.bos_id, info.eos_id, info.pad_id

    def encode(self, *args, **kwargs) -> list[int]:
        raise NotImplementedError("datakit mixtures are tokenized when built; the trainer never encodes text")

    def decode(self, *args, **kwargs) -> str:
        raise NotImplementedError("decode with the tokenizer.json named in the mixture's manifest")

    def get_vocab_size(self) -> int:
        return self.vocab_size
