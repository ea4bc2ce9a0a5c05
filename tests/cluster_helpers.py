"""Real local clusters for the scale-out tests: a Ray head (`ray start --head`) and a single-node Slurm cluster
(munged + slurmctld + slurmd from Debian's packages, with a config written here). Each is started in its own
folder, on free ports, and stopped by process id afterwards. A cluster that cannot start raises ClusterError
with the reason and the daemons' log tails: the tests turn that into a failure, never a skip."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


class ClusterError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else f"({path.name}: no log)"


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group we started (start_new_session=True), then SIGKILL what is left."""
    if proc.poll() is None or _group_alive(proc.pid):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.time() + grace_s
            while time.time() < deadline and _group_alive(proc.pid):
                time.sleep(0.2)
            if not _group_alive(proc.pid):
                break
    proc.poll()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    for pid in os.listdir("/proc"):  # zombies still count for killpg: look for a live member
        if pid.isdigit():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


# ---------------------------------------------------------------- Ray

def start_ray_head(log: Path) -> tuple[subprocess.Popen, str, dict]:
    """`ray start --head --block` on a free port; returns (process, address, env for the build). Token auth is
    off for this loopback-only test cluster (RAY_AUTH_MODE=disabled in both head and build environments)."""
    ray = Path(sys.executable).parent / "ray"
    if not ray.exists():
        raise ClusterError(f"{ray} not found: Ray is not installed (pip install 'datakit[ray]')")
    port = free_port()
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    with open(log, "wb") as f:
        proc = subprocess.Popen([str(ray), "start", "--head", "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false",
                                 "--disable-usage-stats", "--block"], stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                cwd="/")
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise ClusterError(f"`ray start --head` exited with {proc.returncode}:\n{_tail(log)}")
        if "Ray runtime started" in log.read_text(errors="replace"):
            return proc, f"127.0.0.1:{port}", dict(env, RAY_ADDRESS=f"127.0.0.1:{port}")
        time.sleep(0.5)
    stop_group(proc)
    raise ClusterError(f"`ray start --head` did not come up within 120 s:\n{_tail(log)}")


def busy_ray_workers() -> list[int]:
    """datatrove's Ray actors that are running a task right now: process title `ray::RankWorker.run_for_rank`
    and a child process (the pool process that runs the task's pipeline)."""
    titles, parents = {}, {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                titles[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                parents[int(pid)] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    busy = {pid for pid, t in titles.items() if t.startswith("ray::RankWorker.run_for_rank")}
    return sorted(pid for pid in busy if any(parent == pid for parent in parents.values()))


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its children (a worker dying with the task it runs)."""
    children = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(p))
    for p in [pid, *children]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------- Slurm

SLURM_CONF = """\
ClusterName=datakit-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={dir}/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
# a container: no cgroups; processes tracked through /proc
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class SlurmCluster:
    """munged + slurmctld + slurmd on localhost, everything under `folder`; `env` points Slurm's commands at it."""

    def __init__(self, folder: Path):
        self.dir = Path(folder)
        self.env = dict(os.environ, SLURM_CONF=str(self.dir / "slurm.conf"))

    def start(self) -> "SlurmCluster":
        missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo") if not shutil.which(b, path=_sbin_path())]
        if missing:
            raise ClusterError(f"Slurm is not installed ({', '.join(missing)} not found); `.ci/run` and `make test` install it: "
                               "apt-get install slurmctld slurmd slurm-client munge")
        if os.geteuid() != 0:
            raise ClusterError("the test Slurm cluster runs slurmd as root; this test runs as uid %d" % os.geteuid())
        d = self.dir
        for sub in ("state", "spool"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        key = d / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self._run(["munged", "--force", f"--socket={d}/munge.sock", f"--key-file={key}", f"--log-file={d}/munged.log",
                   f"--pid-file={d}/munged.pid", f"--seed-file={d}/munged.seed"], "munged")
        mem_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.9)
        (d / "slurm.conf").write_text(SLURM_CONF.format(host=socket.gethostname().split(".")[0], dir=d, ctld_port=free_port(),
                                                        d_port=free_port(), cpus=os.cpu_count() or 1, mem_mb=mem_mb))
        self._run(["slurmctld", "-f", str(d / "slurm.conf"), "-i"], "slurmctld")
        self._run(["slurmd", "-f", str(d / "slurm.conf")], "slurmd")
        deadline = time.time() + 60
        last = ""
        while time.time() < deadline:
            r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=self.env)
            last = (r.stdout + r.stderr).strip()
            if r.returncode == 0 and last in ("idle", "mixed", "allocated"):
                return self
            time.sleep(1)
        self.stop()
        raise ClusterError(f"the Slurm node did not become idle within 60 s (sinfo: {last!r})\n" + self.logs())

    def _run(self, cmd: list[str], name: str) -> None:
        r = subprocess.run(cmd, capture_output=True, text=True, env=dict(self.env, PATH=_sbin_path()))
        if r.returncode != 0:
            self.stop()
            raise ClusterError(f"{name} did not start (exit {r.returncode}): {r.stderr.strip()}\n" + self.logs())

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{_tail(self.dir / n)}" for n in ("munged.log", "slurmctld.log", "slurmd.log"))

    def stop(self) -> None:
        """Cancel this cluster's jobs, then stop the daemons it started, by the pids they wrote."""
        if (self.dir / "slurmctld.pid").exists():
            subprocess.run(["scancel", "--user", getpass.getuser()], capture_output=True, env=self.env, timeout=30)
        for name in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
            pid_file = self.dir / name
            if pid_file.exists():
                try:
                    pid = int(pid_file.read_text().split()[0])
                    os.kill(pid, signal.SIGTERM)
                    for _ in range(50):
                        os.kill(pid, 0)
                        time.sleep(0.1)
                    os.kill(pid, signal.SIGKILL)
                except (ValueError, ProcessLookupError, IndexError):
                    pass


def _sbin_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
