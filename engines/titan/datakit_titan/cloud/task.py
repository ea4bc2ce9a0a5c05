"""Phase file -> SkyPilot task (a dict that dumps to the YAML `sky jobs launch` reads).

    resources   infra (cloud[/region]), accelerators NAME:COUNT, use_spot, disk_size, job_recovery
    num_nodes   nodes; several run torchrun over $SKYPILOT_NUM_NODES / $SKYPILOT_NODE_RANK / $SKYPILOT_NODE_IPS
    workdir     the checkout (SkyPilot uploads it minus .gitignore'd files: data/, outputs/ stay local)
    file_mounts /datakit/mixture   the built mixture, in a bucket (uploaded from here when it exists here)
                /datakit/outputs   checkpoints, cost.json, TensorBoard, in a bucket (MOUNT_CACHED): a preempted
                                   spot job restarts (`sky jobs` recovery) and `titan run` resumes from them
                /datakit/init      init_from's checkpoints when they exist here (else read from /datakit/outputs)
    setup       Python 3.11 + the README's install (`make install`)
    run         the phase's relative paths linked to the mounts, then `titan run` (or torchrun across nodes)
    secrets     WANDB_API_KEY: null when wandb is online (the value is passed at launch from your environment,
                never written to the file)
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from datakit.errors import UserError

# bucket store per cloud (SkyPilot's `store:` values); elsewhere SkyPilot picks one from the enabled clouds
STORES = {"azure": "azure", "aws": "s3", "gcp": "gcs", "ibm": "ibm", "oci": "oci", "nebius": "nebius"}
MIXTURE_MOUNT, OUTPUTS_MOUNT, INIT_MOUNT = "/datakit/mixture", "/datakit/outputs", "/datakit/init"


@dataclass(frozen=True)
class TaskOptions:
    cloud: str
    region: str | None
    accelerators: str  # NAME:COUNT
    gpus_per_node: int
    nodes: int = 1
    spot: bool = False
    disk_size_gb: int = 256
    bucket: str = "datakit"  # bucket name prefix
    wandb: str = "offline"
    usd_per_gpu_hour: float | None = None
    price_source: str = ""


def bucket_name(*parts: str) -> str:
    """Bucket/container names: lowercase letters, digits and hyphens, 3-63 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:63].strip("-")
    if len(name) < 3:
        raise UserError(f"bucket name {name!r} is too short", field="--bucket", fix="use a prefix of 3+ letters, e.g. datakit")
    return name


def relative(path: str, phase, field: str) -> str:
    if Path(path).is_absolute() or ".." in Path(path).parts:
        raise UserError(f"{path!r} is not a path inside the checkout", file=phase.path, field=field,
                        fix="cloud runs mount the data at the phase's relative paths: use e.g. data/mixtures/<name>")
    return str(Path(path))


def run_script(phase, opts: TaskOptions, *, prefs: bool, init_local: bool) -> str:
    p = phase.phase
    mixture, output = relative(p.mixture, phase, "phase.mixture"), relative(p.output, phase, "phase.output")
    phase_file = shlex.quote(relative(os.path.relpath(phase.path), phase, "phase file (run titan launch from the checkout's root)"))
    lines = ["set -euo pipefail", "source .venv/bin/activate", "# the phase's relative paths -> the bucket mounts"]
    links = [(mixture, MIXTURE_MOUNT), (output, f"{OUTPUTS_MOUNT}/{output.removeprefix('outputs/')}")]
    if p.init_from:
        init = relative(p.init_from, phase, "phase.init_from")
        links.append((init, INIT_MOUNT if init_local else f"{OUTPUTS_MOUNT}/{init.removeprefix('outputs/')}"))
    for local, mount in links:
        lines += [f"mkdir -p {shlex.quote(mount)} {shlex.quote(str(Path(local).parent))}",
                  f"ln -sfn {shlex.quote(mount)} {shlex.quote(local)}"]
    if prefs and p.loss in ("sft_dpo", "dpo"):
        lines += ["# reference log-probs once (resumable; sources already scored are skipped)",
                  f'if [ "$SKYPILOT_NODE_RANK" = 0 ]; then titan refscore {phase_file}; fi']
    if opts.nodes == 1:
        lines.append(f"titan run {phase_file} --nproc $SKYPILOT_NUM_GPUS_PER_NODE")
    else:  # `titan run` on every node: torchrun's static rendezvous at node 0 (datakit_titan.nodes)
        lines.append('MASTER_ADDR=$(echo "$SKYPILOT_NODE_IPS" | head -n1)')
        lines.append(f"titan run {phase_file} --nproc $SKYPILOT_NUM_GPUS_PER_NODE --nnodes $SKYPILOT_NUM_NODES "
                     "--node-rank $SKYPILOT_NODE_RANK --master-addr $MASTER_ADDR")
    return "\n".join(lines) + "\n"


SETUP = """\
set -euo pipefail
# the README's install (make install) needs make and Python >= 3.11; SkyPilot's images ship conda
command -v make >/dev/null || (sudo apt-get update -q && sudo apt-get install -y -q make)
PY=$(command -v python3.11 || command -v python3.12 || true)
if [ -z "$PY" ]; then
  [ -x ~/datakit-py311/bin/python ] || conda create -y -q -p ~/datakit-py311 python=3.11
  PY=~/datakit-py311/bin/python
fi
make install PYTHON="$PY"
"""


def build_task(phase, opts: TaskOptions, *, prefs: bool, mixture_local: bool, init_local: bool) -> dict:
    """The SkyPilot task for one phase. mixture_local / init_local: whether the mixture / init_from
    folders exist in this checkout (then SkyPilot uploads them to their buckets)."""
    p = phase.phase
    store = STORES.get(opts.cloud)
    infra = f"{opts.cloud}/{opts.region}" if opts.region else opts.cloud
    resources = {"infra": infra, "accelerators": opts.accelerators, "use_spot": opts.spot, "disk_size": opts.disk_size_gb,
                 # managed jobs: relaunch in the next region on preemption, and up to 3 times on a failure of ours
                 "job_recovery": {"strategy": "EAGER_NEXT_REGION", "max_restarts_on_errors": 3}}

    def bucket(name: str, source: str | None, mode: str) -> dict:
        spec = {"name": name}
        if source:
            spec["source"] = source
        if store:
            spec["store"] = store
        spec["mode"] = mode
        return spec

    mixture = relative(p.mixture, phase, "phase.mixture")
    mounts = {
        MIXTURE_MOUNT: bucket(bucket_name(opts.bucket, "mix", Path(mixture).name), mixture if mixture_local else None, "MOUNT"),
        OUTPUTS_MOUNT: bucket(bucket_name(opts.bucket, "outputs"), None, "MOUNT_CACHED"),
    }
    if p.init_from and init_local:
        init = relative(p.init_from, phase, "phase.init_from")
        mounts[INIT_MOUNT] = bucket(bucket_name(opts.bucket, "init", Path(init).name), init, "COPY")
    envs = {"DATAKIT_TITAN_WANDB": opts.wandb, "WANDB_PROJECT": phase.metrics.project}
    if opts.usd_per_gpu_hour is not None:  # read by every `titan run` for its cost.json (datakit_titan.cost)
        envs |= {"DATAKIT_TITAN_USD_PER_GPU_HOUR": f"{opts.usd_per_gpu_hour:.6g}", "DATAKIT_TITAN_PRICE_SOURCE": opts.price_source}
    task = {"name": bucket_name("datakit", p.name), "resources": resources, "num_nodes": opts.nodes, "workdir": ".", "envs": envs}
    if opts.wandb == "online":  # a managed secret: `sky jobs launch --secret WANDB_API_KEY` takes the value from your environment
        task["secrets"] = {"WANDB_API_KEY": None}
    return task | {"file_mounts": mounts, "setup": SETUP, "run": run_script(phase, opts, prefs=prefs, init_local=init_local)}


def to_yaml(task: dict) -> str:
    import yaml

    class Literal(str):
        pass

    yaml.SafeDumper.add_representer(Literal, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|"))
    body = {k: Literal(v) if k in ("setup", "run") else v for k, v in task.items()}
    head = ("# SkyPilot task written by `titan launch` (docs/cloud.md). WANDB_API_KEY is passed at launch with\n"
            "# `--secret WANDB_API_KEY` from your environment; its value is never written to this file.\n")
    return head + yaml.safe_dump(body, sort_keys=False, width=120)
