"""Slurm for `datakit mix build --executor slurm`: check the cluster, submit through datatrove, wait for the jobs.

datatrove's SlurmPipelineExecutor turns one stage into one sbatch job array (one array task per datatrove task)
plus a one-task job that merges the stage's stats. The build submits every stage that can start, waits for its
jobs (progress from squeue; success from datatrove's completion markers, never from exit codes alone) and then
writes the mixture itself. Each stage's job ids are kept in `<stage logs>/slurm_jobs.json`: a rerun after Ctrl-C
(or a lost login session) waits for jobs still queued instead of submitting the same tasks twice.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from datakit.errors import UserError

JOBS_FILE = "slurm_jobs.json"
POLL_MAX_SECONDS = 5.0  # squeue is polled every 1 s at first, backing off to this


def check_slurm(partition: str | None) -> None:
    """Fail before any work: no sbatch, no partition, a partition the cluster does not have, no controller."""
    if not partition:
        raise UserError("--executor slurm needs a partition", field="--slurm-partition",
                        fix="pass --slurm-partition <name> (`sinfo -s` lists them)")
    if shutil.which("sbatch") is None:
        raise UserError("--executor slurm needs Slurm's `sbatch` on PATH, and it is not there", field="--executor",
                        fix="run the build on a Slurm login node (or load its module), or use --executor local|ray")
    r = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True)
    if r.returncode != 0:
        first = (r.stderr.strip().splitlines() or ["no output"])[0]
        raise UserError(f"Slurm's controller does not answer (sinfo: {first})", field="--executor",
                        fix="check `sinfo` (and SLURM_CONF) on this machine, or use --executor local|ray")
    names = sorted(set(r.stdout.split()))
    if partition not in names:
        raise UserError(f"Slurm has no partition {partition!r} (it has: {', '.join(names) or 'none'})",
                        field="--slurm-partition", fix="pass one of those (`sinfo -s` lists them)")


class JobIds:
    """datatrove's `job_id_retriever`: reads the id from sbatch's output and remembers every id it saw
    (the stage's array job(s) and its stats-merging job)."""

    def __init__(self):
        self.ids: list[str] = []

    def __call__(self, sbatch_output: str) -> str:
        job_id = sbatch_output.split()[-1]
        self.ids.append(job_id)
        return job_id


def recorded_jobs(logging_dir: Path) -> list[str]:
    path = Path(logging_dir) / JOBS_FILE
    return json.loads(path.read_text()) if path.exists() else []


def record_jobs(logging_dir: Path, ids: list[str]) -> None:
    path = Path(logging_dir) / JOBS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recorded_jobs(logging_dir) + ids))


def queue_states(ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Jobs among `ids` still in Slurm's queue: job id -> [(state, reason)] per array task (squeue)."""
    if not ids:
        return {}
    r = subprocess.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%F|%T|%r"], capture_output=True, text=True)
    if r.returncode != 0:
        first = (r.stderr.strip().splitlines() or ["no output"])[0]
        raise UserError(f"squeue failed while waiting for the build's jobs ({first})", field="--executor",
                        fix=f"the jobs may still run (`squeue -j {','.join(ids)}`); rerun the same command to wait for them")
    wanted, out = set(ids), {}
    for line in r.stdout.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        if job in wanted:
            out.setdefault(job, []).append((state, reason))
    return out


def completed(logging_dir: Path) -> int:
    folder = Path(logging_dir) / "completions"
    return len(list(folder.iterdir())) if folder.exists() else 0


def wait_for_stages(stages: list[tuple[str, Path, int]], progress: bool = True) -> None:
    """Wait until no job of these stages (name, logging_dir, tasks) is queued or running, with a progress bar
    of finished tasks; then every stage must have all its tasks complete, else a UserError with the log tail."""
    ids = [i for _, d, _ in stages for i in recorded_jobs(d)]
    total = sum(t for _, _, t in stages)
    bar = tqdm(total=total, desc="slurm", unit="task", disable=not progress)
    delay = 1.0
    try:
        while True:
            states = queue_states(ids)
            stuck = [j for j, ss in states.items() if any(r == "DependencyNeverSatisfied" for _, r in ss)]
            if stuck:  # e.g. the stats-merging job of a stage whose tasks failed: it can never start
                subprocess.run(["scancel", *stuck], capture_output=True)
            bar.n = min(total, sum(completed(d) for _, d, _ in stages))
            counts: dict[str, int] = {}
            for ss in states.values():
                for s, _ in ss:
                    counts[s.lower()] = counts.get(s.lower(), 0) + 1
            bar.set_postfix_str(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "done")
            bar.refresh()
            if not states:
                break
            time.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX_SECONDS)
    except KeyboardInterrupt:
        bar.close()
        print(f"the Slurm jobs keep running (`squeue -j {','.join(ids)}`; `scancel {' '.join(ids)}` stops them); "
              "rerun the same command to wait for them and finish the mixture", file=sys.stderr)
        raise
    bar.close()
    for name, d, tasks in stages:
        done = completed(d)
        if done < tasks:
            log = newest_log(Path(d) / "slurm_logs")
            tail = log.read_text(errors="replace").splitlines()[-12:] if log else []
            raise UserError(f"stage {name}: {done} of {tasks} Slurm tasks completed; its jobs ({', '.join(recorded_jobs(d))}) "
                            "have left the queue", file=log or d,
                            fix="read the job log (tail below), fix the cause and rerun the same command: finished tasks are skipped",
                            details=tail)


def newest_log(folder: Path) -> Path | None:
    logs = sorted(folder.glob("*.out"), key=lambda p: p.stat().st_mtime) if folder.exists() else []
    return logs[-1] if logs else None


def env_command() -> str:
    """Put this Python environment's scripts (datatrove's launch_pickled_pipeline, merge_stats) first on the job's PATH."""
    return f"export PATH={Path(sys.executable).parent}:$PATH"


def submit_stage(pipeline: list, tasks: int, logging_dir: Path, *, name: str, partition: str, time_limit: str,
                 workers: int, cpus_per_task: int, mem_per_cpu_gb: float, sbatch_args: dict) -> None:
    """Submit one stage with datatrove's SlurmPipelineExecutor, unless jobs a previous run submitted for it are
    still queued (then those are waited for). A stage whose tasks are all complete submits nothing."""
    from datatrove.executor import SlurmPipelineExecutor

    if queue_states(recorded_jobs(logging_dir)):
        return
    args = dict(sbatch_args)
    qos = args.pop("qos", "normal")
    args.setdefault("mem-per-cpu", f"{int(mem_per_cpu_gb * 1024)}M")
    ids = JobIds()
    SlurmPipelineExecutor(
        pipeline=pipeline, tasks=tasks, time=time_limit, partition=partition, job_name=f"datakit-{name}",
        logging_dir=str(logging_dir), workers=workers, cpus_per_task=cpus_per_task,
        qos=qos, sbatch_args=args, env_command=env_command(), job_id_retriever=ids, skip_completed=True,
    ).run()
    if ids.ids:
        record_jobs(logging_dir, ids.ids)
