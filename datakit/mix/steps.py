"""The few datatrove pipeline steps datakit adds: raw-record reading, sampling, hydration, formatting,
per-document bookkeeping and `<s> text </s>` tokenization. Everything else is datatrove's own.

Document convention between steps: `text` = training text, `id` = "<source>/<file>#<row>" (stable whatever the
task or worker count), `metadata` = the raw upstream record (nested structs as dicts) plus `_source`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from functools import cached_property

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer

PENDING = "\u2063pending"  # placeholder text until formatting (datatrove readers skip empty text)


def raw_record_adapter(self, data: dict, path: str, id_in_file: int | str) -> dict:
    """datatrove reader adapter keeping the whole upstream record in metadata (formatting comes later)."""
    source = self.default_metadata["_source"] if self.default_metadata else "source"
    return {"text": PENDING, "id": f"{source}/{path}#{id_in_file}", "metadata": dict(data)}


def keep_fraction(doc_id: str, seed: int, rate: float) -> bool:
    """Deterministic Bernoulli(rate) by document id: the same docs are kept whatever the task count."""
    h = int.from_bytes(hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest(), "little")
    return h < rate * 2**64


class HashSample(PipelineStep):
    """Keep a deterministic `rate` fraction of a large streamed source before it is downloaded in full."""

    name = "🎲 hash sample"
    type = "🔻 - FILTER"

    def __init__(self, rate: float, seed: int):
        super().__init__()
        self.rate, self.seed = rate, seed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            with self.track_time():
                if keep_fraction(doc.id, self.seed, self.rate):
                    self.stat_update("kept")
                    yield doc
                else:
                    self.stat_update("dropped")


class Hydrate(PipelineStep):
    """Fill the text of blob-id rows (python-edu, stack-edu) from a Software Heritage blob store."""

    name = "💧 hydrate blobs"
    type = "📖 - READER"

    def __init__(self, url: str, id_column: str, encoding_column: str, storage_options: dict, cache_dir: str | None):
        super().__init__()
        self.url, self.id_column, self.encoding_column = url, id_column, encoding_column
        self.storage_options, self.cache_dir = storage_options, cache_dir

    @cached_property
    def store(self):
        from datakit.sources.hydrate import BlobStore

        return BlobStore(self.url, storage_options=self.storage_options or None, cache_dir=self.cache_dir)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from datakit.sources.hydrate import hydrate_record

        for doc in data:
            with self.track_time():
                if hydrate_record(doc.metadata, self.store, id_column=self.id_column, encoding_column=self.encoding_column):
                    self.stat_update("hydrated")
                    yield doc
                else:
                    self.stat_update("missing_blob")


class Format(PipelineStep):
    """Render each raw record to training text with the source's formatter (gsm8k, apps, planning, ...)."""

    name = "📝 format"
    type = "✂️ - FORMAT"

    def __init__(self, fmt: str, source: str, spec_file: str):
        super().__init__()
        self.fmt, self.source, self.spec_file = fmt, source, spec_file

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from datakit.sources.formatters import EmptyTextError, get_formatter

        render = get_formatter(self.fmt, file=self.spec_file, source=self.source).render
        for doc in data:
            with self.track_time():
                doc.metadata["_source"] = self.source
                try:
                    text = render(doc.metadata, file=self.spec_file, source=self.source)
                except EmptyTextError:
                    text = ""
                if not text or not text.strip():
                    self.stat_update("empty_text")
                    continue
                doc.text = text
                self.stat_update("formatted")
                yield doc


class DocInfo(PipelineStep):
    """Write one line per document (id, chars, score) in pipeline order, beside the tokenizer's index.

    The tokenizer keeps document order (no shuffling), so row i here is document i of the same rank's shard.
    """

    name = "🧾 doc info"
    type = "📊 - STATS"

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import os

        from datakit.sources.formatters import json_column

        os.makedirs(self.folder, exist_ok=True)
        final = os.path.join(self.folder, f"{rank:05d}.jsonl")
        with open(final + ".tmp", "w") as f:
            for doc in data:
                score = _try(json_column, doc.metadata, "score")
                if score is None:
                    score = _try(json_column, doc.metadata, "metadata.score")
                f.write(json.dumps({"id": doc.id, "n_chars": len(doc.text), "score": score}) + "\n")
                yield doc
        os.replace(final + ".tmp", final)


def _try(fn, *args):
    try:
        value = fn(*args)
        return float(value) if value is not None else None
    except Exception:
        return None


class FramedTokenizer(DocumentTokenizer):
    """datatrove's DocumentTokenizer framing every document as `<s> text </s>` (ids from the tokenizer).

    The tokenizer is built lazily inside each worker (a Rust tokenizer used before datatrove forks hangs).
    Documents without a loss mask take the library's fastest batch path (`encode_batch_fast`: no character
    offsets, which only loss masks need) and one numpy copy per batch instead of a struct.pack per document;
    the bytes written are the same as datatrove's loop (tests/test_build.py checks it).
    """

    def write_unshuffled(self, data: DocumentsPipeline, filename: str):
        if self.save_loss_metadata:
            return super().write_unshuffled(data, filename)
        import numpy as np
        from datatrove.pipeline.tokens.tokenizer import TokenizedFile
        from datatrove.utils.batching import batched

        out = TokenizedFile(
            self.output_folder if (not self.shuffle_documents and not self.shuffle_chunk_size) or not self.local_working_dir
            else self.local_working_dir,
            filename, save_index=self.save_index or self.shuffle_documents or self.shuffle_chunk_size, save_loss_metadata=False,
            upload_block_size=self.upload_block_size, tokenizer_name_or_path=self.tokenizer_name_or_path,
            save_final_metadata=self.save_final_metadata, token_size=self.token_size,
        )
        dtype = np.dtype("<u4") if self.token_size == 4 else np.dtype("<u2")
        for batch in batched(data, self.batch_size):
            with self.track_time(unit="batch"):
                ids = [e.ids for e in self.tokenizer.encode_batch_fast([d.text for d in batch])]
                lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
                flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype, count=int(lengths.sum()))
                out.write_bytes(flat.tobytes(), doc_ends=np.cumsum(lengths).tolist())
                for n in lengths.tolist():
                    self.stat_update("tokens", value=n)
        out.close()
        return out

    def __init__(self, *args, bos_token: str = "<s>", eos_token: str = "</s>", **kwargs):
        super().__init__(*args, **kwargs)
        self.bos_token, self.frame_eos = bos_token, eos_token

    @cached_property
    def tokenizer(self):
        # one load per worker process, not per task (a 65,536-entry tokenizer takes ~0.15 s of CPU to load)
        path = self.tokenizer_name_or_path
        content = open(path, "rb").read() if os.path.isfile(path) else path.encode()  # a retrained file at the same path reloads
        key = (hashlib.blake2b(content, digest_size=16).hexdigest(), self.bos_token, self.frame_eos)
        tok = _FRAMED_TOKENIZERS.get(key)
        if tok is None:
            from tokenizers import processors

            from datatrove.utils.tokenization import load_tokenizer

            tok = load_tokenizer(self.tokenizer_name_or_path)
            tok.post_processor = processors.TemplateProcessing(
                single=f"{self.bos_token} $A {self.frame_eos}",
                special_tokens=[(self.bos_token, tok.token_to_id(self.bos_token)), (self.frame_eos, tok.token_to_id(self.frame_eos))],
            )
            _FRAMED_TOKENIZERS[key] = tok
        return tok


_FRAMED_TOKENIZERS: dict = {}  # per process: (tokenizer file hash, bos, eos) -> framed tokenizer
