"""`datakit mix build`: spec -> tokenized, sampled, accounted shards (Contract 2).

    stages (stages.py: datatrove, resumable) -> count what each source supplies -> plan (refuse past
    max_epochs) -> per source: choose documents (seeded) and write shards with sha256 -> accounting.duckdb
    -> manifest.json last, atomically -> report.md/png

Re-running a killed build skips finished datatrove tasks and finished sources and ends with the same bytes.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import datakit
from datakit.accounting.db import write_accounting
from datakit.accounting.report import write_report
from datakit.contract import (MANIFEST_NAME, Manifest, SourceEntry, TokenizerInfo, load_manifest, sha256_file, token_size_for_vocab,
                              verify_mixture, write_manifest)
from datakit.errors import UserError
from datakit.mix import pipeline as P
from datakit.mix.heldout import heldout_note, record_in_accounting, split_pools, write_heldout
from datakit.mix.plan import CHARS_PER_TOKEN, MixturePlan, make_plan, refuse_if_needed
from datakit.mix.stage_stats import decontamination_summary, empty_sources_error, load_filter_stats, read_stats
from datakit.mix.stages import disk_errors, inputs_fingerprint, run_stages
from datakit.mix.write import Pool, available_tokens, context_for, write_source
from datakit.sources.formatters import get_formatter
from datakit.spec.mixture import MixtureSpec, SourceSpec
from datakit.tokenizer.train import tokenizer_vocab_size


def guard_output(spec: MixtureSpec, work: P.Work) -> None:
    """An output folder belongs to one mixture: refuse to build another mixture's spec into it."""
    work.root.mkdir(parents=True, exist_ok=True)
    marker = work.root / "spec.json"
    if marker.exists():
        old = json.loads(marker.read_text())
        if old.get("name") != spec.mixture.name:
            raise UserError(
                f"the output folder holds the build of another mixture ({old.get('name')!r}, from {old.get('spec_path')})",
                file=spec.path, field="mixture.output",
                fix=f"choose another [mixture] output, or delete {work.output} to rebuild it",
            )
    else:
        marker.write_text(json.dumps({"name": spec.mixture.name, "spec_path": spec.path}))


def check_tokenizer(spec: MixtureSpec) -> tuple[str, int]:
    path = Path(spec.mixture.tokenizer)
    if not path.exists():
        raise UserError("tokenizer not found", file=spec.path, field="mixture.tokenizer",
                        fix=f"train it: `datakit tokenizer train {spec.path} --vocab-size {spec.mixture.vocab_size}`")
    vocab = tokenizer_vocab_size(path)
    if vocab != spec.mixture.vocab_size:
        raise UserError(f"the tokenizer has {vocab:,} tokens but the spec says vocab_size = {spec.mixture.vocab_size:,}",
                        file=spec.path, field="mixture.vocab_size", fix="retrain the tokenizer with that --vocab-size or correct vocab_size")
    return sha256_file(path), vocab


def count_available(spec: MixtureSpec, token_size: int) -> dict[str, tuple[int, int, str]]:
    """Per source: (documents, tokens one pass supplies, basis); a source with `context` counts its rows with context."""
    work = P.Work(spec.output)
    pools = {s.name: Pool(work, s.name, token_size) for s in spec.source}
    split_pools(spec, pools)  # the held-out slice is not available for training
    out = {}
    for s in spec.source:
        tokens, basis = available_tokens(spec, s, pools)
        out[s.name] = (len(pools[s.name].lengths), tokens, basis)
    return out


def hf_revision(s: SourceSpec) -> str | None:
    """Pin a hub dataset to the commit it was read at (best effort: offline keeps the requested revision)."""
    if s.scheme != "hf":
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(s.location, revision=s.revision).sha
    except Exception:
        return s.revision


def build_mixture(spec: MixtureSpec, opts: P.ExecutorOptions | None = None, progress: bool = True, verbose: bool = False,
                  say=None) -> Manifest:
    """Build (or resume, or verify and keep) the mixture of `spec`. say: where to tell the user what was
    found and done besides progress bars (default: stderr). A full disk anywhere is one UserError."""
    opts = opts or P.ExecutorOptions()
    with disk_errors(spec.output), P.executor_session(opts):
        return _build_mixture(spec, opts, progress, verbose, say)


def _build_mixture(spec: MixtureSpec, opts: P.ExecutorOptions | None, progress: bool, verbose: bool, say) -> Manifest:
    opts = opts or P.ExecutorOptions()
    say = say or (lambda msg: print(msg, file=sys.stderr))
    work = P.Work(spec.output)
    tok_sha, vocab = check_tokenizer(spec)
    token_size = token_size_for_vocab(vocab)
    damaged: dict[str, str] = {}  # shard path -> the sha256 the finished build recorded, when we rebuild damaged files
    if (spec.output / MANIFEST_NAME).exists():
        m = load_manifest(spec.output)
        if m.spec_sha256 != spec.sha256 or m.tokenizer.sha256 != tok_sha:
            raise UserError("the output folder holds a finished build of a different spec or tokenizer", file=spec.path,
                            field="mixture.output", fix=f"choose another output, or delete {spec.output} to rebuild")
        if m.inputs_sha256 == inputs_fingerprint(spec):
            # same spec, tokenizer and input files: keep it only if every file still matches the manifest
            checked = verify_mixture(spec.output, manifest=m, progress=progress)
            if checked.ok:
                return m
            say("\n".join([f"the finished build in {spec.output} does not match its manifest: rebuilding", *(f"  {x}" for x in checked.problems)]))
            damaged = {sh.path: sh.sha256 for s in m.sources for sh in s.shards}
        (spec.output / MANIFEST_NAME).unlink()  # input files changed (or damaged): rebuild what they feed (stage fingerprints)
    guard_output(spec, work)
    refuse_if_needed(make_plan(spec), spec.path)  # hub sources: refuse before any download
    P.quiet_datatrove(verbose)
    started = time.time()
    run_stages(spec, opts, tokenize=True, progress=progress)
    counted = count_available(spec, token_size)
    plan = make_plan(spec, counted, filter_stats=load_filter_stats(work))
    empty = [s.name for s in plan.sources if not s.tokens_available]
    if empty:
        raise empty_sources_error(spec, work, empty)
    refuse_if_needed(plan, spec.path)
    entries, all_rows = [], []
    pools = {s.name: Pool(work, s.name, token_size) for s in spec.source}
    held = split_pools(spec, pools)  # before sampling and long-context filling: held-out documents appear in neither
    for s, sp in zip(spec.source, plan.sources):
        layout = get_formatter(s.format).layout
        context = context_for(spec, s, pools)
        with disk_errors(spec.output):
            shards, rows = write_source(spec, s, pools[s.name], sp.tokens_target, token_size, progress, layout, context)
        all_rows += rows
        written = sum(x.n_tokens for x in shards)
        context_tokens = sum(r.context_tokens for r in rows)
        entries.append(SourceEntry(
            name=s.name, uri=s.uri, format=s.format, revision=hf_revision(s), docs_available=sp.docs_available,
            tokens_available=sp.tokens_available, tokens_target=sp.tokens_target, tokens_written=written,
            docs_written=sum(x.n_docs for x in shards), epochs=written / sp.tokens_available, weight=0.0,
            shards=shards, max_epochs=s.max_epochs, filters=sp.filters, read_stats=read_stats(work, s.name), layout=layout,
            context_tokens=context_tokens,
        ))
    if damaged:
        differ = [sh.path for e in entries for sh in e.shards if damaged.get(sh.path) != sh.sha256]
        if differ:
            raise UserError(f"the rebuilt shards differ from the ones the damaged build recorded ({len(differ)}, first {differ[0]}): "
                            "the cached stages under .work are damaged too", file=spec.output, field="mixture.output",
                            fix=f"delete {work.root} (or the whole folder) and rerun the build")
        say(f"rebuilt: every shard again has the sha256 the manifest recorded ({sum(len(e.shards) for e in entries)} shards)")
    total = sum(e.tokens_written for e in entries)
    for e in entries:
        e.weight = e.tokens_written / total if total else 0.0
    manifest = Manifest(
        name=spec.mixture.name, seq_len=spec.mixture.seq_len, seed=spec.mixture.seed, spec=spec.raw, spec_sha256=spec.sha256,
        tokenizer=TokenizerInfo(path=spec.mixture.tokenizer, sha256=tok_sha, vocab_size=vocab, token_size_bytes=token_size),
        sources=entries, total_tokens=total, total_docs=sum(e.docs_written for e in entries), datakit_version=datakit.__version__,
        build_seconds=round(time.time() - started, 1), notes=[*plan.notes, heldout_note(held)], inputs_sha256=inputs_fingerprint(spec), decontamination=decontamination_summary(work),
    )
    with disk_errors(spec.output):
        write_heldout(spec.output, manifest.name, manifest.seq_len, manifest.seed, spec.raw, spec.sha256, manifest.tokenizer, held,
                      datakit.__version__)
        write_accounting(spec.output, manifest, all_rows, work.records)
        record_in_accounting(spec.output, held)
        write_manifest(spec.output, manifest)
        write_report(spec.output)
    return manifest


def other_owner(spec: MixtureSpec) -> str | None:
    """Whose build the output folder holds when it is not this spec's: a finished build of another spec, or
    (finished or not) of another mixture name. None when it is empty or this spec's own."""
    manifest = spec.output / MANIFEST_NAME
    if manifest.exists():
        try:
            m = json.loads(manifest.read_text())
        except ValueError:
            return "an unreadable manifest.json"
        if m.get("spec_sha256") != spec.sha256:
            return f"the finished build of another spec (mixture {m.get('name')!r})"
        tok = Path(spec.mixture.tokenizer)
        if tok.exists() and (m.get("tokenizer") or {}).get("sha256") != sha256_file(tok):
            return "the finished build of this spec with another tokenizer"
    marker = P.Work(spec.output).root / "spec.json"
    if marker.exists():
        old = json.loads(marker.read_text())
        if old.get("name") != spec.mixture.name:
            return f"the build of mixture {old.get('name')!r} (from {old.get('spec_path')})"
    return None


def plan_mixture(spec: MixtureSpec, opts: P.ExecutorOptions | None = None, count_local: bool = True, progress: bool = True, verbose: bool = False,
                 say=None) -> MixturePlan:
    """Plan: hub sources from the catalog; local sources counted by running prepare (+curate) (+tokenize if a tokenizer exists).

    Counting caches its stages in `<output>/.work` (the build reuses them), except when the output holds
    another spec's build (`other_owner`): then it counts in a scratch folder and leaves that build alone."""
    with disk_errors(spec.output):
        return _plan_mixture(spec, opts, count_local, progress, verbose, say)


def _plan_mixture(spec: MixtureSpec, opts: P.ExecutorOptions | None, count_local: bool, progress: bool, verbose: bool, say) -> MixturePlan:
    opts = opts or P.ExecutorOptions()
    say = say or (lambda msg: print(msg, file=sys.stderr))
    local = [s for s in spec.source if s.scheme != "hf" and not _not_generated(s)]
    if local and count_local and (owner := other_owner(spec)):
        # never write into a build another spec owns: count in a scratch folder next to it, then remove that
        scratch = Path(tempfile.mkdtemp(prefix=f".{spec.output.name}.plan-", dir=spec.output.parent))
        say(f"note: {spec.output} holds {owner}; counting in {scratch} instead (removed afterwards) so that build stays untouched")
        try:
            moved = spec.model_copy(update={"mixture": spec.mixture.model_copy(update={"output": str(scratch / "mix")})})
            return plan_mixture(moved, opts, count_local, progress, verbose, say)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    work = P.Work(spec.output)
    counted: dict[str, tuple[int, int, str]] = {}
    if local and count_local:
        guard_output(spec, work)
        P.quiet_datatrove(verbose)
        have_tok = Path(spec.mixture.tokenizer).exists()
        if have_tok:
            check_tokenizer(spec)
        local_spec = spec.model_copy(update={"source": local})
        run_stages(local_spec, opts, tokenize=have_tok, progress=progress)
        if have_tok:
            vocab = tokenizer_vocab_size(spec.mixture.tokenizer)
            counted = count_available(local_spec, 2 if vocab <= 65536 else 4)
        else:
            counted = {s.name: char_estimate(work, spec, s) for s in local}
    plan = make_plan(spec, counted, filter_stats=load_filter_stats(work))
    estimated = [n for n, (_, _, basis) in counted.items() if basis.startswith("chars/4")]
    if estimated:
        plan.notes.append(
            f"no tokenizer at {spec.mixture.tokenizer}: 'available' for {', '.join(estimated)} is an estimate (characters / 4), "
            f"not a token count; for exact counts train it (`datakit tokenizer train {spec.path} --vocab-size {spec.mixture.vocab_size}`) "
            "and rerun `datakit mix plan`")
    return plan


def _not_generated(s: SourceSpec) -> bool:
    """A synth:// folder nobody generated yet: plan it as unknown instead of failing."""
    return s.scheme == "synth" and not Path(s.location, "records").exists()


def char_estimate(work: P.Work, spec: MixtureSpec, s: SourceSpec) -> tuple[int, int, str]:
    import duckdb

    folder = work.curated(s.name) if spec.curate else work.prepared(s.name)
    files = sorted(folder.glob("*.jsonl.gz"))
    if not files:
        return (0, 0, "counted")
    docs, chars = duckdb.execute(f"select count(*), coalesce(sum(length(text)), 0) from read_json_auto({[str(f) for f in files]})").fetchone()
    return int(docs), int(chars / CHARS_PER_TOKEN), "chars/4 (no tokenizer yet)"
