"""Mixture-wide curation: exact dedup, MinHash near-dedup and decontamination across all sources.

    inputs/<source>/*.jsonl.gz  ->  exact dedup -> MinHash -> decontaminate  ->  outputs/<source>/*.jsonl.gz

Documents follow the builder's convention (text, id, metadata with `_source`). All sources are read
by one datatrove reader (the inputs are linked under work_dir/inputs/<source>/), so duplicates are
found across sources. The task count is fixed by the inputs (one task per input file unless
`tasks` is given), never by `workers`: the same inputs, config and seed remove the same documents
whatever the worker count. Every stage has a datatrove logging folder under work_dir, so a rerun
skips finished tasks; a change of config starts the work_dir afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import ExactDedupFilter, ExactDedupSignature, ExactFindDedups
from datatrove.pipeline.dedup.minhash import (
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

from datakit.contract.accounting import MIXTURE_STEPS
from datakit.curate import decontaminate as decont
from datakit.curate import exact_dedup, minhash
from datakit.curate.doc_ids import DupOfLookup, RecordIds
from datakit.curate.filters import check_offline_dependencies
from datakit.curate.records import MIXTURE_SCOPE, STEP_ORDER, CountedStep, RemovalWriter, TokenCounter
from datakit.curate.spec import CurateSpec
from datakit.curate.stats import decontamination_report, load_step_stats
from datakit.errors import UserError


def _fingerprint(curate: CurateSpec, inputs: dict[str, Path], tasks: int, seed: int) -> str:
    files = {s: sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(d).glob("*.jsonl.gz"))
             for s, d in sorted(inputs.items())}
    blob = json.dumps({"curate": curate.model_dump(), "files": files, "tasks": tasks, "seed": seed}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _reset_if_changed(work_dir: Path, records_dir: Path, fingerprint: str) -> None:
    marker = work_dir / "config.sha256"
    if marker.exists() and marker.read_text() == fingerprint:
        return
    if work_dir.exists():
        shutil.rmtree(work_dir)
    for folder in MIXTURE_STEPS:
        for p in (records_dir / "removed").glob(f"*/{folder}"):
            shutil.rmtree(p)
    shutil.rmtree(records_dir / "steps" / MIXTURE_SCOPE, ignore_errors=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(fingerprint)


def _link_inputs(inputs: dict[str, Path], staged: Path, *, file: str) -> int:
    n = 0
    for source, folder in sorted(inputs.items()):
        if not Path(folder).is_dir():
            raise UserError(f"curation input folder {folder} for source {source} does not exist", file=file,
                            field=f"source.{source}", fix="run the source's filter stage first")
        files = sorted(Path(folder).glob("*.jsonl.gz"))
        dest = staged / source
        dest.mkdir(parents=True, exist_ok=True)
        for f in files:
            link = dest / f.name
            if not link.exists():
                os.symlink(f.resolve(), link)
            n += 1
    return n


def _run(pipeline, *, tasks: int, workers: int, logging_dir: Path) -> None:
    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=min(workers, tasks),
                          logging_dir=str(logging_dir), skip_completed=True).run()


def _run_with(run_stage):
    """`run_stage(pipeline, tasks, logging_dir)` (the build's executor: local, Ray or Slurm; it returns once the
    stage's tasks are complete) in place of the local executor; None: the local executor with `workers`."""
    if run_stage is None:
        return _run
    return lambda pipeline, *, tasks, workers, logging_dir: run_stage(pipeline, tasks, Path(logging_dir))


def _publish(final: Path, outputs: dict[str, Path]) -> None:
    """Copy survivors to outputs/<source>/ (temp + rename), removing stale files there."""
    for source, out in outputs.items():
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        produced = sorted((final / source).glob("*.jsonl.gz")) if (final / source).exists() else []
        names = {p.name for p in produced}
        for old in out.glob("*.jsonl.gz"):
            if old.name not in names:
                old.unlink()
        for p in produced:
            tmp = out / (p.name + ".tmp")
            shutil.copyfile(p, tmp)
            os.replace(tmp, out / p.name)


def run_curation(
    curate: CurateSpec,
    *,
    inputs: dict[str, Path],
    outputs: dict[str, Path],
    work_dir: Path,
    records_dir: Path,
    tokenizer_path: str | None,
    workers: int = 1,
    tasks: int | None = None,
    seed: int = 0,
    file: str = "<spec>",
    base_dir: Path | None = None,
    run_stage=None,
) -> dict:
    """Run the mixture-wide curation steps of `curate` over `inputs` and write survivors to `outputs`.

    inputs / outputs: per source, a folder of datatrove jsonl.gz documents (outputs may equal the
        builder's next-stage folders; stale files there are removed).
    work_dir: datatrove signatures, logs and intermediate documents (resumable).
    records_dir: removal records and per-step counts (see datakit.curate.records).
    tokenizer_path: mixture tokenizer.json for n_tokens (None: no token counts).
    workers: parallel processes. tasks: datatrove tasks (default: one per input file); fixes the result.
    seed: mixed into the MinHash permutation seed. base_dir: resolves relative eval-set files.
    run_stage: `run_stage(pipeline, tasks, logging_dir)` runs a stage to completion on another datatrove
        executor (the build passes its Ray/Slurm one); default: datatrove's local executor with `workers`.
    Returns a summary: per step and source docs/tokens in and out, removals, per eval set hits.
    """
    work_dir, records_dir = Path(work_dir), Path(records_dir)
    run = _run_with(run_stage)
    if set(inputs) != set(outputs):
        raise ValueError("inputs and outputs must name the same sources")
    dedup = curate.dedup
    mh_spec = dedup.minhash
    if mh_spec is not None:
        mh_spec = mh_spec.model_copy(update={"seed": mh_spec.seed + seed})
    dc_spec = curate.decontaminate if curate.decontaminate and curate.decontaminate.against else None
    if mh_spec is not None or dc_spec is not None:
        check_offline_dependencies(file=file, field="curate")

    n_files = sum(len(list(Path(d).glob("*.jsonl.gz"))) for d in inputs.values())
    tasks = tasks or max(1, n_files)
    _reset_if_changed(work_dir, records_dir, _fingerprint(curate, inputs, tasks, seed))

    # read every eval set before touching any document: bad files fail here
    sets = decont.build_index(dc_spec, work_dir / "decont_index", file=file, base_dir=base_dir) if dc_spec else {}

    staged = work_dir / "inputs"
    _link_inputs(inputs, staged, file=file)
    counter = TokenCounter(tokenizer_path)
    logs = work_dir / "logs"

    def reader(folder: Path, pattern: str) -> JsonlReader:
        return JsonlReader(str(folder), glob_pattern=pattern, recursive=True, shuffle_files=False, add_file_path=False)

    def counted(inner, step: str):
        return CountedStep(inner, records_dir=records_dir, step=step, folder=step, order=STEP_ORDER[step],
                           scope=MIXTURE_SCOPE, source=None, counter=counter)

    def removal_writer(step: str, reason_fn):
        return RemovalWriter(records_dir, step=step, folder=step, source=None, counter=counter, reason_fn=reason_fn)

    summary: dict = {"tasks": tasks, "removed": {}}
    ex_dir, mh_dir = work_dir / "exact", work_dir / "minhash"
    ex_cfg = exact_dedup.exact_config()

    def head() -> list:
        """Reader plus exact-dedup filter: run by the MinHash signature stage and again by the final
        stage (cheaper than storing the survivors; its records are rewritten identically)."""
        steps: list = [reader(staged, "*/*.jsonl.gz")]
        if dedup.exact:
            writer = removal_writer("exact_dedup", DupOfLookup(ex_dir / "duplicate_of.json"))
            steps.append(counted(ExactDedupFilter(str(ex_dir / "dups"), config=ex_cfg, exclusion_writer=writer),
                                 "exact_dedup"))
        return steps

    if dedup.exact:
        run([reader(staged, "*/*.jsonl.gz"), RecordIds(ex_dir / "ids"),
              ExactDedupSignature(str(ex_dir / "sigs"), config=ex_cfg)],
             tasks=tasks, workers=workers, logging_dir=logs / "exact_1_sigs")
        run([ExactFindDedups(str(ex_dir / "sigs"), str(ex_dir / "dups"), config=ex_cfg)],
             tasks=1, workers=1, logging_dir=logs / "exact_2_find")
        summary["removed"]["exact_dedup"] = exact_dedup.write_duplicate_of(
            ex_dir / "sigs", ex_dir / "dups", ex_dir / "ids", tasks, ex_dir / "duplicate_of.json")

    tail: list = []
    if mh_spec is not None:
        cfg = minhash.minhash_config(mh_spec)
        run([*head(), RecordIds(mh_dir / "ids"), MinhashDedupSignature(str(mh_dir / "sigs"), config=cfg, language="en")],
             tasks=tasks, workers=workers, logging_dir=logs / "minhash_1_sigs")
        run([MinhashDedupBuckets(str(mh_dir / "sigs"), str(mh_dir / "buckets"), config=cfg)],
             tasks=cfg.num_buckets, workers=workers, logging_dir=logs / "minhash_2_buckets")
        run([MinhashDedupCluster(str(mh_dir / "buckets"), str(mh_dir / "remove"), config=cfg, save_cluster_id=True)],
             tasks=1, workers=1, logging_dir=logs / "minhash_3_cluster")
        summary["removed"]["minhash_dedup"] = minhash.write_duplicate_of(
            mh_dir / "remove", mh_dir / "ids", tasks, mh_dir / "duplicate_of.json")
        summary["minhash"] = {"num_buckets": cfg.num_buckets, "hashes_per_bucket": cfg.hashes_per_bucket,
                              "ngram": cfg.n_grams, "seed": cfg.seed,
                              "p_caught_at_threshold": round(mh_spec.detection_probability(mh_spec.threshold), 4)}
        writer = removal_writer("minhash_dedup", DupOfLookup(mh_dir / "duplicate_of.json"))
        tail.append(counted(MinhashDedupFilter(str(mh_dir / "remove"), exclusion_writer=writer), "minhash_dedup"))

    if dc_spec is not None:
        tail.append(counted(decont.ItemNGramsDecontFilter(
            str(work_dir / "decont_index"), config=decont.decont_config(dc_spec), language="en",
            exclusion_writer=removal_writer("decontaminate", decont.decont_reason)), "decontaminate"))

    final = work_dir / "final"
    run([*head(), *tail, JsonlWriter(str(final), output_filename="${_source}/${rank}.jsonl.gz")],
         tasks=tasks, workers=workers, logging_dir=logs / "final")
    _publish(final, outputs)

    steps = [r for r in load_step_stats(records_dir) if r["step"] in MIXTURE_STEPS]
    summary["steps"] = steps
    if dc_spec is not None:
        summary["decontamination"] = decontamination_report(records_dir, sets)
    per_source: dict[str, dict] = {}
    for r in steps:
        s = per_source.setdefault(r["source"], {"docs_in": None, "docs_out": 0, "tokens_in": None, "tokens_out": 0})
        if s["docs_in"] is None:
            s["docs_in"], s["tokens_in"] = r["docs_in"], r["tokens_in"]
        s["docs_out"], s["tokens_out"] = r["docs_out"], r["tokens_out"]
    summary["sources"] = per_source
    (work_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary
