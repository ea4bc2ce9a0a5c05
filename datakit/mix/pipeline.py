"""Compile a mixture spec into datatrove pipelines and run them on datatrove's executors.

Stages (each resumable: datatrove skips tasks it completed, logged under `<output>/.work/logs/`):
  prepare   read -> [hash-sample] -> [hydrate] -> format -> per-source filters -> jsonl.gz   (per source)
  curate    mixture-wide exact/MinHash dedup + decontamination                            (all sources)
  tokenize  doc info + `<s> text </s>` tokenization into datatrove .ds shards             (per source)
The task count of every stage is fixed by the data (files), never by `--workers`, so any worker count
produces the same bytes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from datakit.errors import UserError, is_disk_full
from datakit.mix.steps import DocInfo, FramedTokenizer, Format, HashSample, Hydrate, raw_record_adapter
from datakit.sources.files import LocalFiles, read_columns, resolve_local
from datakit.spec.mixture import MixtureSpec, SourceSpec

log = logging.getLogger("datakit")


@dataclass
class ExecutorOptions:
    """Where datatrove runs the stages (docs/scale-out.md).

    workers: tasks running at once (local: processes, default 1; slurm/ray: None = no limit).
    cpus_per_task / mem_per_cpu_gb: what each slurm/ray task reserves. slurm_options: extra sbatch
    options (`{"account": "x", "qos": "high"}`), written as `#SBATCH --key=value`.
    """

    kind: str = "local"  # local | slurm | ray
    workers: int | None = 1
    slurm_partition: str | None = None
    slurm_time: str = "24:00:00"
    slurm_options: dict = field(default_factory=dict)
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0
    verbose: bool = False
    submitted: list = field(default_factory=list, repr=False)  # slurm stages submitted, not yet waited for


KINDS = ("local", "slurm", "ray")


@contextlib.contextmanager
def executor_session(opts: ExecutorOptions):
    """Check the executor before any work (no sbatch, no partition, no reachable Ray cluster: one clear error)
    and hold its connection for the build."""
    if opts.kind not in KINDS:
        raise UserError(f"unknown executor {opts.kind!r}", field="--executor", fix="use local, slurm or ray")
    if opts.workers is not None and opts.workers < 1:
        raise UserError(f"--workers {opts.workers}: needs at least 1", field="--workers", fix="leave it out or pass a positive count")
    if opts.kind == "slurm":
        from datakit.mix.slurm_jobs import check_slurm

        check_slurm(opts.slurm_partition)
    if opts.kind == "ray":
        from datakit.mix.ray_cluster import ray_cluster

        with ray_cluster(opts.verbose or _VERBOSE[0]):
            yield
        return
    yield


class Work:
    """Paths of the intermediate build state under `<output>/.work`."""

    def __init__(self, output: Path):
        self.output = Path(output)
        self.root = self.output / ".work"

    def prepared(self, s: str) -> Path:
        return self.root / "prepared" / s

    def curated(self, s: str) -> Path:
        return self.root / "curated" / s

    def docinfo(self, s: str) -> Path:
        return self.root / "docinfo" / s

    def tokenized(self, s: str) -> Path:
        return self.root / "tokenized" / s

    def logs(self, stage: str, s: str = "all") -> Path:
        return self.root / "logs" / stage / s

    @property
    def records(self) -> Path:
        return self.root / "records"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"


def local_files(spec: MixtureSpec, src: SourceSpec) -> LocalFiles | None:
    if src.scheme == "hf":
        return None
    return resolve_local(src.uri, file=spec.path, field=f"source.{src.name}.uri")


def check_source(spec: MixtureSpec, src: SourceSpec) -> set[str] | None:
    """Fail before any processing: unknown formatter, missing columns, blob ids without hydration."""
    from datakit.mix.examples import validate_records
    from datakit.sources.formatters import check_columns, get_formatter

    fmt = get_formatter(src.format, file=spec.path, source=src.name)
    files = local_files(spec, src)
    if files is None:
        return None
    columns = read_columns(files)
    if fmt.examples:
        check_columns(fmt, columns, file=spec.path, source=src.name)
        validate_records([os.path.join(files.folder, f) for f in files.files], src.format, file=spec.path, source=src.name)
        return columns
    if src.hydrate is not None:
        if src.hydrate.id_column not in columns:
            raise UserError(
                f"hydration needs column {src.hydrate.id_column!r}; the files have {sorted(columns)}",
                file=spec.path, field=f"source.{src.name}.hydrate.id_column", fix="name the blob-id column",
            )
        columns = columns | {"text"}
    elif "text" not in columns and "blob_id" in columns:
        raise UserError(
            "these rows carry blob ids, not text (python-edu / stack-edu), and no hydration is configured",
            file=spec.path, field=f"source.{src.name}.hydrate",
            fix='add `hydrate = {}` to fetch text from s3://softwareheritage/content/{blob_id} (see docs/mixtures.md)',
        )
    check_columns(fmt, columns, file=spec.path, source=src.name)
    return columns


def filter_steps(spec: MixtureSpec, src: SourceSpec, columns: set[str] | None, work: Work) -> list:
    if not src.filters:
        return []
    from datakit.curate.filter_list import parse_filters
    from datakit.curate.filters import build_filter_steps

    parsed = parse_filters(src.filters, file=spec.path, source=src.name)
    return build_filter_steps(
        parsed, source=src.name, file=spec.path, columns=columns, records_dir=work.records,
        tokenizer_path=spec.mixture.tokenizer if Path(spec.mixture.tokenizer).exists() else None,
    )


def blob_url(url: str) -> str:
    """`samples://softwareheritage/content/{blob_id}` -> the embedded local blob store; other URLs unchanged."""
    if url.startswith("samples://"):
        from datakit.sources.files import samples_dir

        return "file://" + str(samples_dir() / url.removeprefix("samples://"))
    return url


def reader_step(spec: MixtureSpec, src: SourceSpec, files: LocalFiles | None):
    meta = {"_source": src.name}
    if files is None:
        from datatrove.pipeline.readers import HuggingFaceDatasetReader

        options = {"name": src.config, "split": src.split}
        if src.revision:
            options["revision"] = src.revision
        return HuggingFaceDatasetReader(
            src.location, dataset_options=options, streaming=True, adapter=raw_record_adapter, default_metadata=meta
        ), (src.tasks or 1)
    if files.kind == "parquet":
        from datatrove.pipeline.readers import ParquetReader

        reader = ParquetReader(files.folder, glob_pattern=files.pattern, adapter=raw_record_adapter, default_metadata=meta)
    else:
        from datatrove.pipeline.readers import JsonlReader

        reader = JsonlReader(files.folder, glob_pattern=files.pattern, compression="infer", adapter=raw_record_adapter, default_metadata=meta)
    return reader, min(src.tasks or len(files.files), len(files.files))


def source_steps(spec: MixtureSpec, src: SourceSpec, work: Work, *, columns: set[str] | None, sample_rate: float = 1.0,
                 filters: bool = True):
    """read -> [hash-sample] -> [hydrate] -> format -> per-source filters (not with filters=False: the tokenizer
    sample reads the sources as they come); returns (steps, tasks)."""
    reader, tasks = reader_step(spec, src, local_files(spec, src))
    steps: list = [reader]
    if sample_rate < 1.0:
        steps.append(HashSample(sample_rate, spec.mixture.seed))
    if src.hydrate is not None:
        h = src.hydrate
        steps.append(Hydrate(blob_url(h.url), h.id_column, h.encoding_column, h.storage_options, h.cache_dir or str(work.blobs)))
    steps.append(Format(src.format, src.name, spec.path))
    if filters:
        steps.extend(filter_steps(spec, src, columns, work))
    return steps, tasks


def prepare_pipeline(spec: MixtureSpec, src: SourceSpec, work: Work, *, columns: set[str] | None, sample_rate: float = 1.0):
    """The source's documents, formatted and filtered, materialised as jsonl.gz (input of mixture-wide curation)."""
    from datatrove.pipeline.writers import JsonlWriter

    steps, tasks = source_steps(spec, src, work, columns=columns, sample_rate=sample_rate)
    steps.append(JsonlWriter(str(work.prepared(src.name)), output_filename="${rank}.jsonl.gz", compression="gzip"))
    return steps, tasks


def tokenize_steps(spec: MixtureSpec, src: SourceSpec, work: Work) -> list:
    """doc info + tokenizer (`<s> text </s>`, or prompt/completion examples with loss masks for sft/dpo)."""
    from datakit.mix.examples import ExampleTokenizer, ExpandPairs
    from datakit.sources.formatters import get_formatter

    kwargs = dict(tokenizer_name_or_path=spec.mixture.tokenizer, save_filename=src.name, shuffle_documents=False,
                  save_final_metadata=False, batch_size=1000)
    fmt = get_formatter(src.format)
    if fmt.examples:
        return [ExpandPairs(fmt.layout), DocInfo(str(work.docinfo(src.name))), ExampleTokenizer(str(work.tokenized(src.name)), **kwargs)]
    return [DocInfo(str(work.docinfo(src.name))), FramedTokenizer(str(work.tokenized(src.name)), **kwargs)]


def tokenize_pipeline(spec: MixtureSpec, src: SourceSpec, work: Work, input_folder: Path) -> list:
    from datatrove.pipeline.readers import JsonlReader

    reader = JsonlReader(str(input_folder), glob_pattern="*.jsonl.gz", compression="gzip", add_file_path=False)
    return [reader, *tokenize_steps(spec, src, work)]


def fused_pipeline(spec: MixtureSpec, src: SourceSpec, work: Work, *, columns: set[str] | None, sample_rate: float = 1.0):
    """Without [curate] nothing needs the intermediate documents: read -> ... -> filters -> tokenize in one pass."""
    steps, tasks = source_steps(spec, src, work, columns=columns, sample_rate=sample_rate)
    return [*steps, *tokenize_steps(spec, src, work)], tasks


def run_stage(pipeline: list, tasks: int, logging_dir: Path, opts: ExecutorOptions, name: str) -> None:
    """Run one stage on the chosen datatrove executor. local and ray return once every task is complete;
    slurm submits (or finds still queued) and returns: `settle(opts)` waits for what was submitted."""
    if opts.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        executor = LocalPipelineExecutor(
            pipeline=pipeline, tasks=tasks, workers=max(1, min(opts.workers or 1, tasks)), logging_dir=str(logging_dir),
            skip_completed=True,
        )
        with stage_logs(logging_dir, opts):
            executor.run()
    elif opts.kind == "slurm":
        from datakit.mix.slurm_jobs import submit_stage

        submit_stage(pipeline, tasks, logging_dir, name=name, partition=opts.slurm_partition, time_limit=opts.slurm_time,
                     workers=opts.workers or -1, cpus_per_task=opts.cpus_per_task, mem_per_cpu_gb=opts.mem_per_cpu_gb,
                     sbatch_args=opts.slurm_options)
        opts.submitted.append((name, logging_dir, tasks))
        return
    elif opts.kind == "ray":
        from datatrove.executor import RayPipelineExecutor

        RayPipelineExecutor(
            pipeline=pipeline, tasks=tasks, workers=opts.workers or -1, logging_dir=str(logging_dir),
            cpus_per_task=opts.cpus_per_task, mem_per_cpu_gb=opts.mem_per_cpu_gb, skip_completed=True,
        ).run()
    else:
        raise UserError(f"unknown executor {opts.kind!r}", field="--executor", fix="use local, slurm or ray")
    check_complete(name, logging_dir, tasks, opts.kind)


def settle(opts: ExecutorOptions, progress: bool = True) -> None:
    """Wait for the stages submitted to Slurm (a no-op for local and ray, which run synchronously)."""
    if opts.kind != "slurm" or not opts.submitted:
        return
    from datakit.mix.slurm_jobs import wait_for_stages

    stages, opts.submitted[:] = list(opts.submitted), []
    wait_for_stages(stages, progress=progress)
    for name, logging_dir, tasks in stages:
        check_complete(name, logging_dir, tasks, opts.kind)


def run_and_settle(pipeline: list, tasks: int, logging_dir: Path, opts: ExecutorOptions, name: str, progress: bool = True) -> None:
    run_stage(pipeline, tasks, logging_dir, opts, name)
    settle(opts, progress)


def check_complete(name: str, logging_dir: Path, tasks: int, kind: str) -> None:
    """Every task of the stage left its completion marker (Ray reports failed tasks only as a warning); then its
    stats.json is merged again from every task's own stats (datatrove's local executor merges only the tasks
    of its last run, so a resumed build would otherwise under-count)."""
    if not stage_done(logging_dir, tasks):
        done = len(list((logging_dir / "completions").iterdir())) if (logging_dir / "completions").exists() else 0
        raise UserError(f"stage {name}: {done} of {tasks} datatrove tasks completed on {kind}", file=logging_dir / "logs",
                        fix="read the failed tasks' logs there, fix the cause and rerun the same command: finished tasks are skipped")
    stats = logging_dir / "stats.json"
    if (logging_dir / "stats").exists():
        from datatrove.utils.stats import PipelineStats

        merged = sum((PipelineStats.from_json(json.loads(f.read_text())) for f in sorted((logging_dir / "stats").glob("*.json"))),
                     start=PipelineStats())
        stats.write_text(merged.to_json())


_VERBOSE = [False]


def stage_logs(logging_dir: Path, opts: ExecutorOptions):
    """Context in which a stage runs: datatrove's console logs go to <logging_dir>/stderr.log (local runs,
    unless `quiet_datatrove(verbose=True)`); its tail is shown if the stage fails."""
    return _stderr_to(logging_dir / "stderr.log", enabled=opts.kind == "local" and not _VERBOSE[0])


@contextlib.contextmanager
def _stderr_to(path: Path, enabled: bool):
    """Send datatrove's per-task console logs (parent and worker processes) to a file; show its tail on failure."""
    if not enabled:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 2)
        try:
            yield
        except BaseException as e:
            os.dup2(saved, 2)
            if not is_disk_full(e):  # a full disk is reported as such; its traceback in the log is noise
                tail = path.read_text(errors="replace").splitlines()[-15:]
                print("\n".join(["datatrove log tail (" + str(path) + "):", *tail]), file=sys.stderr)
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def stage_done(logging_dir: Path, tasks: int) -> bool:
    completions = logging_dir / "completions"
    return completions.exists() and len(list(completions.iterdir())) >= tasks


def reset_if_incomplete(folder: Path, logging_dir: Path) -> None:
    """A stage with no completed task yet restarts from scratch (datatrove redoes unfinished tasks itself)."""
    if folder.exists() and not (logging_dir / "completions").exists():
        shutil.rmtree(folder)


def quiet_datatrove(verbose: bool = False) -> None:
    """datatrove logs every task to stderr: keep those logs in `<output>/.work/logs/.../stderr.log` unless verbose."""
    _VERBOSE[0] = verbose
    if verbose:
        return
    from loguru import logger

    logger.remove()
    said: set[str] = set()

    def once(record) -> bool:  # datatrove's Ray executor repeats its shared-filesystem warning for every stage
        text = record["message"]
        if text.startswith("Logging directory points to a local filesystem"):
            if text in said:
                return False
            said.add(text)
        return True

    logger.add(sys.stderr, level="WARNING", format="{level}: {message}", filter=once)
