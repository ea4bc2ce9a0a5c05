"""Write a source's final shards: choose documents (or DPO pairs) to the target, add long context where the
spec asks for it, and write datatrove-format shards with sha256 (into a temp folder renamed at the end)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from datakit.errors import UserError
from datakit.mix import pipeline as P
from datakit.contract import DocRow, Shard, sha256_file, token_dtype
from datakit.contract.layouts import PAIR_LAYOUT, is_example_layout
from datakit.contract.reader import ShardDocs
from datakit.mix.sample import choose_documents, source_rng
from datakit.spec.mixture import MixtureSpec, SourceSpec


class Pool:
    """A source's tokenized documents after curation: lengths, ids, chars, scores, and their tokens (the
    contract's document index over the tokenize stage's shards)."""

    def __init__(self, work: P.Work, source: str, token_size: int):
        files = sorted(work.tokenized(source).glob("*.ds"))
        self.docs = ShardDocs(files, token_size)
        self.ids, self.chars, self.scores = [], [], []
        for k, ds in enumerate(files):
            rank = ds.name.rsplit("_", 2)[-2]
            n_docs = int(self.docs.doc_offset[k + 1] - self.docs.doc_offset[k])
            info = [json.loads(x) for x in (work.docinfo(source) / f"{rank}.jsonl").read_text().splitlines()]
            if len(info) != n_docs:
                raise RuntimeError(f"{ds}: {n_docs} documents but {len(info)} doc-info rows")
            self.ids += [i["id"] for i in info]
            self.chars += [i["n_chars"] for i in info]
            self.scores += [i["score"] for i in info]
        self.lengths = self.docs.lengths()
        self.has_loss = self.docs.has_loss

    def tokens(self, d: int) -> np.ndarray:
        return np.asarray(self.docs.doc(d).tokens)

    def loss(self, d: int) -> np.ndarray:
        loss = self.docs.doc(d).loss_mask
        return np.asarray(loss, np.uint8) if loss is not None else np.ones(self.lengths[d], np.uint8)


@dataclass
class Context:
    """Long-context filler: documents drawn from other sources, inserted after `<s>` before the prompt."""

    pools: list[Pool]
    max_tokens: int | None
    sep: list[int]
    seq_len: int
    assume_filled: bool = False  # planning before the context sources are read: count rows as if they fill

    def budget(self, longest: int) -> int:
        """Context tokens for a unit whose longest example has `longest` tokens: fill to seq_len (or max_tokens)."""
        room = self.seq_len - longest - len(self.sep)
        return max(0, min(room, self.max_tokens) if self.max_tokens is not None else room)

    def draw(self, budget: int, rng: np.random.Generator) -> list[int]:
        sizes = np.array([len(p.lengths) for p in self.pools])
        if budget <= 0 or sizes.sum() == 0:
            return []
        out: list[int] = []
        while len(out) < budget:
            k = int(rng.integers(sizes.sum()))
            p = int(np.searchsorted(np.cumsum(sizes), k, side="right"))
            d = k - int(sizes[:p].sum())
            inner = self.pools[p].tokens(d)[1:-1].tolist()  # without its own <s> ... </s>
            out += (self.sep if out else []) + inner
        return out[:budget]


def row_lengths(pool: Pool, units: list[list[int]], context: Context | None) -> np.ndarray:
    """Tokens each unit is written with: its examples, plus, per example, the context and separator that
    fill it (`Context.budget`). Targets and availability of a source with `context` count these row tokens,
    so `tokens = "2B"` means 2B tokens of `[context, prompt, completion]` rows, as the engine trains them."""
    out = np.zeros(len(units), np.int64)
    has_context = context is not None and (context.assume_filled or any(len(p.lengths) for p in context.pools))
    for i, u in enumerate(units):
        lens = [int(pool.lengths[d]) for d in u]
        extra = 0
        if has_context:
            b = context.budget(max(lens))
            extra = (b + len(context.sep)) if b > 0 else 0
        out[i] = sum(lens) + extra * len(lens)
    return out


def context_for(spec: MixtureSpec, s: SourceSpec, pools: dict[str, Pool]) -> Context | None:
    """The long-context filler a source's `context` asks for (None without one)."""
    if s.context is None:
        return None
    from datakit.mix.examples import separator_ids

    missing = [c for c in s.context.sources if c not in pools]  # not read yet (a hub source, while planning)
    return Context([pools[c] for c in s.context.sources if c in pools], s.context.max_tokens,
                   separator_ids(spec.mixture.tokenizer, s.context.separator), spec.mixture.seq_len, assume_filled=bool(missing))


def available_tokens(spec: MixtureSpec, s: SourceSpec, pools: dict[str, Pool]) -> tuple[int, str]:
    """(tokens one pass supplies, basis): document tokens, or row tokens (context included) for a source with context."""
    pool = pools[s.name]
    if s.context is None:
        return int(pool.lengths.sum()), "counted"
    from datakit.sources.formatters import get_formatter

    rows = row_lengths(pool, unit_docs(pool, get_formatter(s.format).layout), context_for(spec, s, pools))
    fill = f"up to {s.context.max_tokens:,} context tokens" if s.context.max_tokens is not None else f"filled to seq_len {spec.mixture.seq_len:,}"
    return int(rows.sum()), f"counted: {len(pool.lengths):,} examples as rows {fill} with context"


def unit_docs(pool: Pool, layout: str) -> list[list[int]]:
    """Units the target counts: single documents, or (chosen, rejected) pairs that are never split."""
    n = len(pool.lengths)
    if layout == PAIR_LAYOUT:
        if n % 2:
            raise RuntimeError("a DPO source has an odd number of examples")
        return [[i, i + 1] for i in range(0, n, 2)]
    return [[i] for i in range(n)]


def write_array(path, array: np.ndarray) -> None:
    """Write an array's bytes through a Python file (numpy's tofile reports a full disk without its errno)."""
    with open(path, "wb") as f:
        f.write(array.tobytes())


def write_source(spec: MixtureSpec, s: SourceSpec, pool: Pool, target: int, token_size: int, progress: bool,
                 layout: str = "docs", context: Context | None = None) -> tuple[list[Shard], list[DocRow]]:
    out_dir = spec.output / "tokens" / s.name
    tmp_dir = spec.output / "tokens" / f".{s.name}.tmp"
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    tmp_dir.mkdir(parents=True)
    units = unit_docs(pool, layout)
    unit_len = row_lengths(pool, units, context)  # with context: the rows' tokens, context included
    if is_example_layout(layout):
        too_long = [pool.ids[d] for u in units for d in u if pool.lengths[d] > spec.mixture.seq_len]
        if too_long:
            raise UserError(f"{len(too_long)} examples are longer than seq_len {spec.mixture.seq_len} before any context (first: {too_long[0]})",
                            file=spec.path, field=f"source.{s.name}", fix="raise [mixture] seq_len or drop the long records")
    order, epochs = choose_documents(unit_len, target, spec.mixture.seed, s.name)
    dtype = token_dtype(token_size)
    with_loss = pool.has_loss or is_example_layout(layout)
    shards: list[Shard] = []
    rows: list[DocRow] = []
    bar = tqdm(total=len(order), desc=f"write {s.name}", unit="example" if is_example_layout(layout) else "doc", disable=not progress, leave=False)
    pos, k = 0, 0
    while pos < len(order):
        name = f"{s.name}-{k:05d}.ds"
        path = tmp_dir / name
        pieces, loss_pieces, ends, n = [], [], [], 0
        while pos < len(order) and (n == 0 or n + unit_len[order[pos]] <= spec.mixture.shard_tokens):
            u, epoch = units[order[pos]], int(epochs[pos])
            ctx: list[int] = []
            if context is not None:
                budget = context.budget(max(int(pool.lengths[d]) for d in u))
                ctx = context.draw(budget, source_rng(spec.mixture.seed, f"{s.name}/context/{pos}", epoch)) if budget > 0 else []
            for role, d in zip(("chosen", "rejected") if layout == PAIR_LAYOUT else ("",), u):
                toks, loss = pool.tokens(d), pool.loss(d)
                if ctx:
                    filler = ctx + context.sep
                    toks = np.concatenate([toks[:1], np.asarray(filler, toks.dtype), toks[1:]])
                    loss = np.concatenate([loss[:1], np.zeros(len(filler), np.uint8), loss[1:]])
                pieces.append(toks.astype(dtype))
                if with_loss:
                    loss_pieces.append(loss)
                n += len(toks)
                ends.append(n)
                completion = int(loss.sum()) if is_example_layout(layout) else None
                prompt = (len(toks) - len(ctx) - (len(context.sep) if ctx else 0) - 1 - completion) if is_example_layout(layout) else None
                rows.append(DocRow(s.name, name, len(rows), pool.ids[d], len(toks), pool.chars[d], pool.scores[d], epoch,
                                   len(ctx), prompt, completion, int(order[pos]) if layout == PAIR_LAYOUT else None, role or None))
            pos += 1
            bar.update(1)
        write_array(path, np.concatenate(pieces))
        write_array(f"{path}.index", np.asarray(ends, "<u8"))
        loss_sha = None
        if with_loss:
            write_array(f"{path}.loss", np.concatenate(loss_pieces).astype(np.uint8))
            loss_sha = sha256_file(str(path) + ".loss")
        shards.append(Shard(path=f"tokens/{s.name}/{name}", size_bytes=path.stat().st_size, sha256=sha256_file(path), n_tokens=n,
                            n_docs=len(ends), index_sha256=sha256_file(str(path) + ".index"), loss_sha256=loss_sha))
        k += 1
    bar.close()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)
    return shards, rows
