"""SFT and DPO examples (Contract 3 records) as mixture sources, for the long-context phase.

Layout on disk (Contract 2, `layout` in the manifest):
  sft        one document per example: `<s> [context <sep>] prompt completion </s>`; `.ds.loss` is 1 on
             completion + `</s>` only
  dpo_pairs  documents 2i and 2i+1 are the chosen and rejected example of pair i; both hold the same
             `<s> [context <sep>] prompt` tokens, then their own completion + `</s>` (loss 1 there only)
Prompt and completion are tokenized separately (never one BPE pass across the boundary), so the shared
prefix of a pair is identical token for token.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from functools import cached_property
from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer, TokenizedFile, get_output_filename

from datakit.contract.layouts import PAIR_LAYOUT
from datakit.errors import UserError
from datakit.sources.formatters import get_formatter

def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def validate_records(files: list[str], fmt: str, *, file: str, source: str) -> int:
    """Check every record before a build: required fields non-empty; a DPO pair's chosen != rejected."""
    formatter = get_formatter(fmt, file=file, source=source)
    need, pairs = sorted(formatter.required_columns), formatter.layout == PAIR_LAYOUT
    n = 0
    for path in files:
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        else:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                rows = [json.loads(line) for line in f if line.strip()]
        for i, r in enumerate(rows, 1):
            n += 1
            where = f"{path} record {i} (id {r.get('id', '?')})"
            for k in need:
                if not isinstance(r.get(k), str) or not r[k].strip():
                    raise UserError(f"{where}: field {k!r} is missing or empty", file=file, field=f"source.{source}.format",
                                    fix=f"format {fmt!r} needs non-empty {', '.join(need)} (Contract 3)")
            if pairs and _norm(r["chosen"]) == _norm(r["rejected"]):
                raise UserError(f"{where}: chosen and rejected are the same text", file=file, field=f"source.{source}",
                                fix="drop the pair or regenerate it (`datakit synth dpo` never writes such pairs)")
    return n


class ExpandPairs(PipelineStep):
    """One DPO record -> two examples (chosen, then rejected) that share the prompt; SFT records pass through."""

    name = "👯 expand pairs"
    type = "✂️ - FORMAT"

    def __init__(self, layout: str):
        super().__init__()
        self.layout = layout

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            m = doc.metadata
            if self.layout != PAIR_LAYOUT:
                yield Document(text=m["completion"], id=doc.id, metadata={"prompt": m["prompt"], "completion": m["completion"]})
                continue
            for role in ("chosen", "rejected"):
                self.stat_update(role)
                yield Document(text=m[role], id=f"{doc.id}#{role}", metadata={"prompt": m["prompt"], "completion": m[role]})


class ExampleTokenizer(DocumentTokenizer):
    """Tokenize prompt and completion separately: `<s> prompt completion </s>`, loss 0 on `<s>` + prompt, 1 after."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, save_loss_metadata=True, **kwargs)

    @cached_property
    def tokenizer(self):
        from datatrove.utils.tokenization import load_tokenizer

        tok = load_tokenizer(self.tokenizer_name_or_path)
        tok.post_processor = None
        return tok

    def write_unshuffled(self, data: DocumentsPipeline, filename: str):
        from datatrove.utils.batching import batched

        bos, eos = self.tokenizer.token_to_id("<s>"), self.tokenizer.token_to_id("</s>")
        out = TokenizedFile(self.output_folder, filename, save_index=True, save_loss_metadata=True, token_size=self.token_size)
        for batch in batched(data, self.batch_size):
            with self.track_time(unit="batch"):
                prompts = self.tokenizer.encode_batch([d.metadata["prompt"] for d in batch], add_special_tokens=False)
                comps = self.tokenizer.encode_batch([d.metadata["completion"] for d in batch], add_special_tokens=False)
                for p, c in zip(prompts, comps):
                    tokens = [bos, *p.ids, *c.ids, eos]
                    loss = np.zeros(len(tokens), dtype=bool)
                    loss[1 + len(p.ids):] = True
                    out.write(tokens, loss)
                    self.stat_update("tokens", value=len(tokens))
                    self.stat_update("completion_tokens", value=len(c.ids) + 1)
        out.close()
        return out

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self.write_unshuffled(data, get_output_filename(self.save_filename, rank, "unshuffled"))
        return
        yield


def separator_ids(tokenizer_path: str | os.PathLike, text: str = "\n\n") -> list[int]:
    """Token ids of the context separator, read from tokenizer.json (no Rust tokenizer in the parent)."""
    data = json.loads(Path(tokenizer_path).read_text())
    vocab = data["model"]["vocab"]
    byte_level = "".join({"\n": "Ċ", " ": "Ġ"}.get(ch, ch) for ch in text)
    if byte_level in vocab:
        return [vocab[byte_level]]
    return [vocab[ch] for ch in byte_level if ch in vocab]
