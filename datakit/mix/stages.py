"""The build's stages as objects, run in order by one orchestrator (`run_stages`).

    Prepare(source)       read -> [sample] -> [hydrate] -> format -> filters -> jsonl.gz (the input of curation)
    ReadTokenize(source)  the same and tokenized in one pass: without [curate] nothing needs the documents
    Curate()              mixture-wide exact / MinHash dedup and decontamination over every prepared source
    Tokenize(source)      prepared (or curated) documents -> token files

Every stage resumes: datatrove skips finished tasks, and `refresh_stale_stages` resets exactly the stages
whose inputs changed (fingerprints of the source definition, its input files, [curate] and the tokenizer).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tqdm.auto import tqdm

from datakit.contract import sha256_file
from datakit.curate import run_curation
from datakit.curate.records import clear_records
from datakit.errors import UserError, disk_full_reason, is_disk_full
from datakit.mix import pipeline as P
from datakit.mix.plan import catalog_availability, targets
from datakit.mix.stage_stats import empty_sources_error
from datakit.spec.mixture import MixtureSpec, SourceSpec

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
    target_keys = {"tokens", "weight", "max_epochs", "tokens_available", "docs_available", "context", "heldout_docs"}
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
                clear_records(work.records, name)
    path.write_text(json.dumps({**old, **new}, indent=1))


def sample_rates(spec: MixtureSpec) -> dict[str, float]:
    """For hub sources far larger than their target, stream a deterministic fraction instead of everything."""
    avail = {s.name: catalog_availability(s)[1] for s in spec.source}
    tgt = targets(spec, avail)
    rates = {}
    for s in spec.source:
        a = avail[s.name]
        rates[s.name] = min(1.0, OVERSAMPLE * tgt[s.name] / a) if (s.scheme == "hf" and a) else 1.0
    return rates


def resolve_eval_files(curate):
    """`samples://...` eval-set files (the demo's) -> paths inside datakit's embedded samples."""
    if curate.decontaminate is None:
        return curate
    from datakit.sources.files import samples_dir

    files = {k: str(samples_dir() / v.removeprefix("samples://")) if v.startswith("samples://") else v
             for k, v in curate.decontaminate.files.items()}
    return curate.model_copy(update={"decontaminate": curate.decontaminate.model_copy(update={"files": files})})


@dataclass
class StageRun:
    """What every stage of one build reads."""

    spec: MixtureSpec
    work: P.Work
    opts: P.ExecutorOptions
    columns: dict[str, set[str] | None]  # per source: the columns its files have (None: a hub source)
    rates: dict[str, float]  # per source: the fraction of a hub source streamed (sample_rates)
    progress: bool = True


@dataclass
class Stage:
    """One resumable step of the build; `source` is None for a mixture-wide stage. `reads_earlier`: it reads
    what earlier stages wrote, so jobs submitted before it (Slurm) must be done first."""

    source: SourceSpec | None = None
    name: ClassVar[str] = ""
    reads_earlier: ClassVar[bool] = False

    @property
    def label(self) -> str:
        return f"{self.name} {self.source.name if self.source else 'all sources'}"

    def run(self, r: StageRun) -> None:
        raise NotImplementedError


class Prepare(Stage):
    name = "prepare"
    logs, job = "prepare", "prepare"  # its log folder (work.logs) and job name
    pipeline = staticmethod(P.prepare_pipeline)

    def run(self, r: StageRun) -> None:
        s = self.source
        steps, tasks = self.pipeline(r.spec, s, r.work, columns=r.columns[s.name], sample_rate=r.rates[s.name])
        P.run_stage(steps, tasks, r.work.logs(self.logs, s.name), r.opts, f"{self.job}-{s.name}")


class ReadTokenize(Prepare):
    name = "fused"
    logs, job = "tokenize", "read-tokenize"
    pipeline = staticmethod(P.fused_pipeline)


class Curate(Stage):
    name = "curate"
    reads_earlier = True

    def run(self, r: StageRun) -> None:
        spec, work = r.spec, r.work
        # a source its filters emptied has nothing to curate: it is left out here and reported as empty
        # (`empty_sources_error`) instead of failing inside curation
        kept = [x for x in spec.source if any(work.prepared(x.name).glob("*.jsonl.gz"))]
        if not kept:
            raise empty_sources_error(spec, work, [x.name for x in spec.source])
        with P.stage_logs(work.logs("curate"), r.opts):
            summary = run_curation(
                resolve_eval_files(spec.curate), base_dir=Path(spec.path).parent, inputs={x.name: work.prepared(x.name) for x in kept},
                outputs={x.name: work.curated(x.name) for x in kept}, work_dir=work.root / "curate",
                records_dir=work.records, tokenizer_path=spec.mixture.tokenizer if Path(spec.mixture.tokenizer).exists() else None,
                workers=r.opts.workers or 1, tasks=None, seed=spec.mixture.seed, file=spec.path,
                run_stage=None if r.opts.kind == "local" else
                (lambda pipeline, tasks, logs: P.run_and_settle(pipeline, tasks, logs, r.opts, f"curate-{logs.name}", r.progress)),
            )
        (work.root / "curation_summary.json").write_text(json.dumps(summary, indent=1, default=str))


class Tokenize(Stage):
    name = "tokenize"
    reads_earlier = True

    def run(self, r: StageRun) -> None:
        s = self.source
        src_folder = r.work.curated(s.name) if r.spec.curate else r.work.prepared(s.name)
        n_files = len(list(src_folder.glob("*.jsonl.gz"))) if src_folder.exists() else 0
        if n_files == 0:
            return  # nothing survived: reported as zero available
        P.run_stage(P.tokenize_pipeline(r.spec, s, r.work, src_folder), n_files, r.work.logs("tokenize", s.name), r.opts, f"tokenize-{s.name}")


def plan_stages(spec: MixtureSpec, work: P.Work, *, tokenize: bool) -> list[Stage]:
    """prepare (or read+tokenize) per source, then [curate], then tokenize per source."""
    def prepared_already(s: SourceSpec) -> bool:
        return P.stage_done(work.logs("prepare", s.name), P.reader_step(spec, s, P.local_files(spec, s))[1])

    # Without [curate] no stage needs the intermediate documents: read and tokenize in one pass ("fused"),
    # unless an earlier `mix plan` (before the tokenizer existed) already prepared them.
    fused = {s.name for s in spec.source if tokenize and not spec.curate and not prepared_already(s)}
    return (
        [ReadTokenize(s) if s.name in fused else Prepare(s) for s in spec.source]
        + ([Curate()] if spec.curate else [])
        + ([Tokenize(s) for s in spec.source if s.name not in fused] if tokenize else [])
    )


def run_stages(spec: MixtureSpec, opts: P.ExecutorOptions, *, tokenize: bool, progress: bool = True) -> None:
    """The orchestrator: check every source, reset stale stages, then run the planned stages in order (each
    skipped where datatrove recorded it complete). A full disk in any stage is one UserError."""
    work = P.Work(spec.output)
    rates = sample_rates(spec)
    columns = {s.name: P.check_source(spec, s) for s in spec.source}
    tok = Path(spec.mixture.tokenizer)
    refresh_stale_stages(spec, work, rates, sha256_file(tok) if tokenize and tok.exists() else None)
    for s in spec.source:
        P.filter_steps(spec, s, columns[s.name], work)
    run = StageRun(spec, work, opts, columns, rates, progress)
    bar = tqdm(plan_stages(spec, work, tokenize=tokenize), desc="build", unit="stage", disable=not progress)
    for stage in bar:
        bar.set_postfix_str(stage.label)
        if stage.reads_earlier:
            P.settle(opts, progress)  # Slurm: the stages submitted so far (their outputs feed this one) must be done
        with disk_errors(spec.output):
            stage.run(run)
    P.settle(opts, progress)
