"""Scale-out of `datakit mix build`: the smoke spec built by datatrove's Ray executor on a real local Ray cluster
and by its Slurm executor on a real single-node Slurm cluster equals the local build byte for byte; a Ray worker
killed mid-build costs nothing; bad executor input is one line naming the fix."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cluster_helpers import ClusterError, SlurmCluster, free_port, busy_ray_workers, kill_tree, start_ray_head, stop_group
from datakit.contract import sha256_file
from smoke_helpers import smoke_spec_text

BUILD = [sys.executable, "-m", "datakit.cli.main", "mix", "build", "smoke.toml"]
WALL_CLOCK = ("created", "build_seconds")  # when and how long: the only manifest fields allowed to differ


def write_spec(folder: Path, tokenizer: Path) -> Path:
    """The smoke spec with a relative output (`mix`): the same spec text wherever the folder is, so the
    manifests (spec and its sha256 included) of builds in different folders can be compared whole."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "smoke.toml").write_text(smoke_spec_text(Path("mix"), tokenizer))
    return folder / "mix"


def completions(out: Path) -> list[Path]:
    logs = out / ".work" / "logs"
    return list(logs.rglob("completions/*")) if logs.exists() else []


def assert_same_build(a: Path, b: Path) -> None:
    """Shards byte for byte, the manifest field for field (all but wall-clock), accounting row for row, report text."""
    shards = lambda d: {str(p.relative_to(d)): sha256_file(p) for p in sorted((d / "tokens").rglob("*")) if p.is_file()}  # noqa: E731
    assert shards(a) and shards(a) == shards(b)
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    for k in WALL_CLOCK:
        ma.pop(k), mb.pop(k)
    assert ma == mb
    ca, cb = (duckdb.connect(str(d / "accounting.duckdb"), read_only=True) for d in (a, b))
    tables = [t for (t,) in ca.execute("select table_name from information_schema.tables order by 1").fetchall()]
    assert "docs" in tables
    for t in tables:
        assert ca.execute(f"select * from {t} order by all").fetchall() == cb.execute(f"select * from {t} order by all").fetchall(), t
    report = lambda d: re.sub(r"built \S+ with", "built <when> with", (d / "report.md").read_text())  # noqa: E731
    assert report(a) == report(b)


def lost_task(log: Path) -> bool:
    """datatrove's Ray executor logged a task whose actor died (it resubmits such a task)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return any(w in text for w in ("failed with RayActorError", "failed due to preemption", "failed with retriable error"))


@pytest.fixture(scope="module")
def local_build(tmp_path_factory, smoke_tokenizer) -> Path:
    out = write_spec(tmp_path_factory.mktemp("local"), smoke_tokenizer)
    r = subprocess.run([*BUILD, "--workers", "2"], cwd=out.parent, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.mark.slow
def test_ray_build_equals_local_and_a_killed_worker_costs_nothing(local_build, smoke_tokenizer, tmp_path):
    try:
        head, address, env = start_ray_head(tmp_path / "ray-head.log")
    except ClusterError as e:
        pytest.fail(f"the local Ray cluster could not start: {e}")
    try:
        out = write_spec(tmp_path / "ray", smoke_tokenizer)
        log = tmp_path / "ray-build.log"
        cmd = [*BUILD, "--executor", "ray"]
        with open(log, "w") as f:  # the head runs in /, the build in its own folder: relative paths must still work
            proc = subprocess.Popen(cmd, cwd=out.parent, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        # kill the worker of a running task (and the task with it) once some tasks are done; datatrove's Ray executor
        # sees the actor die and resubmits the task (it logs the RayActorError). A kill can land just as a task ends,
        # so try again (at most 3 kills) until the build's log shows a task lost with its worker.
        kills, deadline = [], time.time() + 900
        while len(kills) < 3 and proc.poll() is None and time.time() < deadline and not lost_task(log):
            workers = busy_ray_workers()
            if len(completions(out)) >= 3 and workers:
                kill_tree(workers[0])
                kills.append(workers[0])
                for _ in range(100):  # up to 5 s for datatrove to notice
                    if lost_task(log) or proc.poll() is not None:
                        break
                    time.sleep(0.05)
            time.sleep(0.05)
        assert kills, "no datatrove Ray worker was seen running a task before the build ended:\n" + log.read_text()[-3000:]
        finished_before = {p: p.stat().st_mtime_ns for p in completions(out)}
        proc.wait(timeout=900)
        first = log.read_text(errors="replace")
        assert proc.returncode != 0 or lost_task(log), first[-3000:]  # a task really died with its worker
        # datatrove resubmitted the task; whether or not the first run got to the end, the rerun finishes the
        # mixture (or verifies and keeps the finished one), redoing no finished task
        r = subprocess.run(cmd, cwd=out.parent, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, first[-2000:] + r.stderr[-3000:]
        assert all(p.stat().st_mtime_ns == t for p, t in finished_before.items())
        assert_same_build(local_build, out)
    finally:
        stop_group(head)


@pytest.mark.slow
def test_slurm_build_equals_local(local_build, smoke_tokenizer, tmp_path):
    cluster = SlurmCluster(tmp_path / "slurm")
    try:
        cluster.start()
    except ClusterError as e:
        pytest.fail(f"Slurm could not start on this machine, so the Slurm build was not tested: {e}")
    try:
        out = write_spec(tmp_path / "build", smoke_tokenizer)
        bad = subprocess.run([*BUILD, "--executor", "slurm", "--slurm-partition", "gpu"], cwd=out.parent, env=cluster.env,
                             capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and "no partition 'gpu' (it has: debug)" in bad.stderr and "Traceback" not in bad.stderr
        r = subprocess.run([*BUILD, "--executor", "slurm", "--slurm-partition", "debug"], cwd=out.parent, env=cluster.env,
                           capture_output=True, text=True, timeout=1500)
        assert r.returncode == 0, r.stderr[-3000:] + "\n" + cluster.logs()
        jobs = [j for f in (out / ".work" / "logs").rglob("slurm_jobs.json") for j in json.loads(f.read_text())]
        assert len(jobs) >= 2 * 11  # every stage went through sbatch: a job array and a stats job per stage
        assert list((out / ".work" / "logs").rglob("slurm_logs/*.out"))  # Slurm wrote the jobs' logs where the docs say
        assert_same_build(local_build, out)
    finally:
        cluster.stop()


# ---------------------------------------------------------------- bad input: one line each, naming the fix

def _refused(folder: Path, tokenizer: Path, args: list[str], env: dict | None = None) -> str:
    out = write_spec(folder, tokenizer)
    r = subprocess.run([*BUILD, *args], cwd=out.parent, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert line.startswith("error: ") and "(fix: " in line and "\n" not in line, line
    assert not out.exists()  # refused before any work
    return line


def test_ray_without_a_reachable_cluster_is_refused(tmp_path, smoke_tokenizer):
    import os

    env = dict(os.environ, RAY_ADDRESS=f"127.0.0.1:{free_port()}")
    line = _refused(tmp_path, smoke_tokenizer, ["--executor", "ray"], env)
    assert "no Ray cluster answers at RAY_ADDRESS=127.0.0.1:" in line and "ray start --head" in line


def test_slurm_without_a_partition_or_sbatch_is_refused(tmp_path, smoke_tokenizer):
    import os

    line = _refused(tmp_path / "a", smoke_tokenizer, ["--executor", "slurm"])
    assert "needs a partition" in line and "--slurm-partition <name>" in line
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # a machine without Slurm's commands
    line = _refused(tmp_path / "b", smoke_tokenizer, ["--executor", "slurm", "--slurm-partition", "debug"], env)
    assert "`sbatch` on PATH" in line and "--executor local|ray" in line


def test_unknown_executor_is_refused(tmp_path, smoke_tokenizer):
    line = _refused(tmp_path, smoke_tokenizer, ["--executor", "spark"])
    assert "unknown executor 'spark'" in line and "local, slurm or ray" in line
