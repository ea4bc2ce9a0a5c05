"""`datakit mix build`: spec -> tokenized, sampled, accounted shards (Contract 2).

    stages (datatrove, resumable) -> count what each source supplies -> plan (refuse past max_epochs)
    -> per source: choose documents (seeded) and write shards with sha256 -> accounting.duckdb
    -> manifest.json last, atomically -> report.md/png

Re-running a killed build skips finished datatrove tasks and finished sources and ends with the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

import datakit
from datakit.contract import (MANIFEST_NAME, Manifest, SourceEntry, TokenizerInfo, load_manifest, sha256_file, token_size_for_vocab,
                              verify_mixture, write_manifest)
from datakit.contract.accounting import MIXTURE_STEPS
from datakit.errors import UserError, disk_full_reason, is_disk_full
from datakit.mix import pipeline as P
from datakit.mix.plan import CHARS_PER_TOKEN, MixturePlan, catalog_availability, make_plan, refuse_if_needed, targets
from datakit.mix.write import Pool, available_tokens, context_for, write_source
from datakit.spec.mixture import MixtureSpec, SourceSpec
from datakit.tokenizer.train import tokenizer_vocab_size

OVERSAMPLE = 1.1  # stream 10% more than needed from a hub source we subsample, to absorb filters and card error


@contextmanager
def disk_errors(path: Path):
    """A full disk (or quota, or file-size limit) anywhere in the build -> one UserError; nothing is marked done."""
    try:
        yield
    except Exception as e:
        if is_disk_full(e):
            raise UserError(f"the disk is full ({disk_full_reason(e)})", file=path,
                            fix="free space (or point [mixture] output elsewhere) and rerun: the build resumes") from None
        raise


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


def _fp(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def input_fingerprint(spec: MixtureSpec, s: SourceSpec) -> str | None:
    """Local input files by name, size and mtime (a synth:// folder that grew gets rebuilt); hub sources: None."""
    files = P.local_files(spec, s)
    if files is None:
        return None
    stats = [(f, os.stat(os.path.join(files.folder, f)).st_size, os.stat(os.path.join(files.folder, f)).st_mtime_ns) for f in files.files]
    return _fp(stats)


def inputs_fingerprint(spec: MixtureSpec) -> str:
    return _fp({s.name: input_fingerprint(spec, s) for s in spec.source})


def refresh_stale_stages(spec: MixtureSpec, work: P.Work, rates: dict[str, float], tokenizer_sha: str | None) -> None:
    """Reuse cached stages only where their inputs are unchanged; reset a source whose definition changed.

    Changing a target (tokens/weight/max_epochs) keeps everything; changing a source's uri, format, filters,
    hydration, hub sampling rate, the seed, [curate] or the tokenizer redoes exactly the stages they feed.
    """
    path = work.root / "fingerprints.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    new: dict[str, str] = {}
    target_keys = {"tokens", "weight", "max_epochs", "tokens_available", "docs_available", "context"}
    for s in spec.source:
        new[f"prepare/{s.name}"] = _fp(s.model_dump(exclude=target_keys), spec.mixture.seed, round(rates[s.name], 12),
                                       input_fingerprint(spec, s))
    new["curate"] = _fp(spec.raw.get("curate"), sorted(new.items()))
    if tokenizer_sha is not None:  # planning without a tokenizer does not decide the tokenize stage
        for s in spec.source:
            new[f"tokenize/{s.name}"] = _fp(new[f"prepare/{s.name}"], new["curate"] if spec.curate else None, tokenizer_sha)
    for key, fp in new.items():
        if key in old and old[key] != fp:
            stage, _, name = key.partition("/")
            folders = {
                "prepare": [work.prepared(name), work.logs("prepare", name)],  # + its filter records, below
                "curate": [work.root / "curated", work.logs("curate"), work.root / "curate"],
                "tokenize": [work.docinfo(name), work.tokenized(name), work.logs("tokenize", name)],
            }[stage]
            for f in folders:
                if f.exists():
                    shutil.rmtree(f)
            if stage == "prepare":
                from datakit.curate.records import clear_records

                clear_records(work.records, name)
    path.write_text(json.dumps({**old, **new}, indent=1))


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


def sample_rates(spec: MixtureSpec) -> dict[str, float]:
    """For hub sources far larger than their target, stream a deterministic fraction instead of everything."""
    avail = {s.name: catalog_availability(s)[1] for s in spec.source}
    tgt = targets(spec, avail)
    rates = {}
    for s in spec.source:
        a = avail[s.name]
        rates[s.name] = min(1.0, OVERSAMPLE * tgt[s.name] / a) if (s.scheme == "hf" and a) else 1.0
    return rates


def run_stages(spec: MixtureSpec, opts: P.ExecutorOptions, *, tokenize: bool, progress: bool = True) -> None:
    """prepare -> curate -> tokenize, each skipped where datatrove recorded it complete."""
    work = P.Work(spec.output)
    rates = sample_rates(spec)
    columns = {s.name: P.check_source(spec, s) for s in spec.source}
    tok = Path(spec.mixture.tokenizer)
    refresh_stale_stages(spec, work, rates, sha256_file(tok) if tokenize and tok.exists() else None)
    for s in spec.source:
        P.filter_steps(spec, s, columns[s.name], work)
    def prepared_already(s: SourceSpec) -> bool:
        return P.stage_done(work.logs("prepare", s.name), P.reader_step(spec, s, P.local_files(spec, s))[1])

    # Without [curate] no stage needs the intermediate documents: read and tokenize in one pass ("fused"),
    # unless an earlier `mix plan` (before the tokenizer existed) already prepared them.
    fused = {s.name for s in spec.source if tokenize and not spec.curate and not prepared_already(s)}
    stages = (
        [("fused" if s.name in fused else "prepare", s) for s in spec.source]
        + ([("curate", None)] if spec.curate else [])
        + ([("tokenize", s) for s in spec.source if s.name not in fused] if tokenize else [])
    )
    bar = tqdm(stages, desc="build", unit="stage", disable=not progress)
    for stage, s in bar:
        bar.set_postfix_str(f"{stage} {s.name if s else 'all sources'}")
        if stage in ("curate", "tokenize"):
            P.settle(opts, progress)  # Slurm: the stages submitted so far (their outputs feed this one) must be done
        with disk_errors(spec.output):
            if stage == "prepare":
                steps, tasks = P.prepare_pipeline(spec, s, work, columns=columns[s.name], sample_rate=rates[s.name])
                P.run_stage(steps, tasks, work.logs("prepare", s.name), opts, f"prepare-{s.name}")
            elif stage == "fused":
                steps, tasks = P.fused_pipeline(spec, s, work, columns=columns[s.name], sample_rate=rates[s.name])
                P.run_stage(steps, tasks, work.logs("tokenize", s.name), opts, f"read-tokenize-{s.name}")
            elif stage == "curate":
                from datakit.curate import run_curation

                # a source its filters emptied has nothing to curate: it is left out here and reported as empty
                # (`empty_sources_error`) instead of failing inside curation
                kept = [x for x in spec.source if any(work.prepared(x.name).glob("*.jsonl.gz"))]
                if not kept:
                    raise empty_sources_error(spec, work, [x.name for x in spec.source])
                with P._stderr_to(work.logs("curate") / "stderr.log", enabled=opts.kind == "local" and not P._VERBOSE[0]):
                    summary = run_curation(
                        resolve_eval_files(spec.curate), base_dir=Path(spec.path).parent, inputs={x.name: work.prepared(x.name) for x in kept},
                        outputs={x.name: work.curated(x.name) for x in kept}, work_dir=work.root / "curate",
                        records_dir=work.records, tokenizer_path=spec.mixture.tokenizer if Path(spec.mixture.tokenizer).exists() else None,
                        workers=opts.workers or 1, tasks=None, seed=spec.mixture.seed, file=spec.path,
                        run_stage=None if opts.kind == "local" else
                        (lambda pipeline, tasks, logs: P.run_and_settle(pipeline, tasks, logs, opts, f"curate-{logs.name}", progress)),
                    )
                (work.root / "curation_summary.json").write_text(json.dumps(summary, indent=1, default=str))
            else:
                src_folder = work.curated(s.name) if spec.curate else work.prepared(s.name)
                n_files = len(list(src_folder.glob("*.jsonl.gz"))) if src_folder.exists() else 0
                if n_files == 0:
                    continue  # nothing survived: reported as zero available
                P.run_stage(P.tokenize_pipeline(spec, s, work, src_folder), n_files, work.logs("tokenize", s.name), opts, f"tokenize-{s.name}")
    P.settle(opts, progress)


def empty_sources_error(spec: MixtureSpec, work: P.Work, names: list[str]) -> UserError:
    """"no documents left after filters in source X (kept 0 of N ...)": where they were lost, step by step."""
    stats = load_filter_stats(work)
    parts = []
    for name in names:
        steps = stats.get(name, [])
        read = read_stats(work, name).get("docs_read")
        first_empty = next((f for f in steps if f.get("docs_in") and not f.get("docs_out")), None)
        if first_empty is not None:
            where = "curation" if first_empty["step"] in MIXTURE_STEPS else "filters"
            parts.append(f"no documents left after {where} in source {name} (kept 0 of {first_empty['docs_in']:,} at {first_empty['step']!r}"
                         + (f"; {read:,} read" if read is not None else "") + ")")
        elif read == 0:
            parts.append(f"no documents read from source {name} (its files hold no rows)")
        else:
            parts.append(f"no documents left after filters in source {name} (kept 0 of {read if read is not None else '?'})")
    return UserError("; ".join(parts), file=spec.path, field=f"source.{names[0]}.filters",
                     fix=f"loosen its filters{' or [curate]' if spec.curate else ''}, or check the input files "
                         f"(what was removed and why: {work.records / 'removed'})")


def decontamination_summary(work: P.Work) -> dict:
    path = work.root / "curation_summary.json"
    return json.loads(path.read_text()).get("decontamination", {}) if path.exists() else {}


def resolve_eval_files(curate):
    """`samples://...` eval-set files (the demo's) -> paths inside datakit's embedded samples."""
    if curate.decontaminate is None:
        return curate
    from datakit.sources.files import samples_dir

    files = {k: str(samples_dir() / v.removeprefix("samples://")) if v.startswith("samples://") else v
             for k, v in curate.decontaminate.files.items()}
    return curate.model_copy(update={"decontaminate": curate.decontaminate.model_copy(update={"files": files})})


def read_stats(work: P.Work, source: str) -> dict[str, int]:
    """Counters from datatrove's stats of the prepare stage: docs read, blobs hydrated/missing, empty texts, sampled out."""
    path = work.logs("prepare", source) / "stats.json"
    if not path.exists():  # read and tokenized in one pass
        path = work.logs("tokenize", source) / "stats.json"
    if not path.exists():
        return {}
    try:
        steps = json.loads(path.read_text())
    except ValueError:  # the merged file was cut short (a full disk after the tasks finished): merge the tasks' own again
        from datatrove.utils.stats import PipelineStats

        merged = sum((PipelineStats.from_json(json.loads(f.read_text())) for f in sorted((path.parent / "stats").glob("*.json"))),
                     start=PipelineStats())
        path.write_text(merged.to_json())
        steps = json.loads(path.read_text())
    out: dict[str, int] = {}
    for step in steps:
        stats = step.get("stats", {})
        if "READER" in step.get("name", "") and "documents" in stats:
            out["docs_read"] = int(stats["documents"]["total"] if isinstance(stats["documents"], dict) else stats["documents"])
        for key in ("hydrated", "missing_blob", "empty_text", "dropped"):
            if key in stats:
                v = stats[key]
                out["sampled_out" if key == "dropped" else key] = int(v["total"] if isinstance(v, dict) else v)
    return out


def count_available(spec: MixtureSpec, token_size: int) -> dict[str, tuple[int, int, str]]:
    """Per source: (documents, tokens one pass supplies, basis); a source with `context` counts its rows with context."""
    work = P.Work(spec.output)
    pools = {s.name: Pool(work, s.name, token_size) for s in spec.source}
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
    from datakit.mix.examples import LAYOUTS

    entries, all_rows = [], []
    pools = {s.name: Pool(work, s.name, token_size) for s in spec.source}
    for s, sp in zip(spec.source, plan.sources):
        layout = LAYOUTS.get(s.format, "docs")
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
        build_seconds=round(time.time() - started, 1), notes=plan.notes, inputs_sha256=inputs_fingerprint(spec), decontamination=decontamination_summary(work),
    )
    from datakit.accounting.db import write_accounting
    from datakit.accounting.report import write_report

    with disk_errors(spec.output):
        write_accounting(spec.output, manifest, all_rows, work.records)
        write_manifest(spec.output, manifest)
        write_report(spec.output)
    return manifest


def load_filter_stats(work: P.Work) -> dict[str, list[dict]]:
    try:
        from datakit.curate.records import load_step_stats
    except ImportError:
        return {}
    out: dict[str, list[dict]] = {}
    for row in load_step_stats(work.records):
        d = dict(row)
        if d.get("docs_in"):
            d["kept_docs_frac"] = d["docs_out"] / d["docs_in"]
        if d.get("tokens_in"):
            d["kept_tokens_frac"] = d["tokens_out"] / d["tokens_in"]
        out.setdefault(d["source"], []).append(d)
    return out


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
