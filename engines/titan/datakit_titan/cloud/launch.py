"""`titan launch`: a phase on a cloud GPU through SkyPilot, after the same checks `titan run` makes.

Refuses before anything is rented: an unknown cloud or GPU (lists the valid ones), a batch that does not
fit the GPU's memory by `titan estimate`, a price it cannot find (unless --price-per-hour), and a cloud
SkyPilot has no credentials for (SkyPilot's own `sky check`, reported as it says it).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from datakit.errors import UserError
from datakit_titan.cloud import sky
from datakit_titan.cloud.gpus import GpuChoice, parse_cloud, parse_gpu
from datakit_titan.cloud.prices import Price, find_price
from datakit_titan.cloud.task import TaskOptions, build_task, to_yaml
from datakit_titan.estimate import GIB, duration, flops_per_token, memory_per_gpu, phase_vocab
from datakit_titan.kinds import PREFS, kind_of
from datakit_titan.presets import PRESETS

TASK_DIR = Path("outputs/launch")  # generated task files (outputs/ is .gitignore'd: never uploaded, never committed)


@dataclass
class Plan:
    phase: object
    gpu: GpuChoice
    nodes: int
    price: Price
    hours: float  # wall-clock
    tokens_per_s: float
    task: dict
    yaml: str

    @property
    def n_gpus(self) -> int:
        return self.nodes * self.gpu.count

    @property
    def usd(self) -> float:
        return self.hours * self.price.usd_per_node_hour * self.nodes


def wall_hours(phase, gpu: GpuChoice, n_gpus: int, mfu: float) -> tuple[float, float]:
    """(hours, mean tokens/s) for the phase's stages at `mfu` of the GPU's peak: `titan estimate`'s formula."""
    p = PRESETS[phase.phase.model]
    vocab = phase_vocab(phase)
    secs, tokens = 0.0, 0
    for st, n in zip(phase.stage, phase.stage_tokens()):
        tps = mfu * gpu.spec.peak_bf16_tflops * 1e12 * n_gpus / flops_per_token(p, vocab, st.seq_len)["total"]
        secs += n / tps
        tokens += n
    return secs / 3600, tokens / secs


def folder_bytes(path: Path) -> tuple[int, int]:
    files = [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files), len(files)


def workdir_bytes() -> tuple[int, int] | None:
    """What SkyPilot uploads as the workdir: files git does not ignore (SkyPilot honours .gitignore)."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    files = [Path(f) for f in out.decode().split("\0") if f and Path(f).is_file()]
    return sum(f.stat().st_size for f in files), len(files)


def plan_launch(phase_path, *, cloud: str, gpu: str, nodes: int = 1, spot: bool = False, price_per_hour: float | None = None,
                mfu: float = 0.4, disk_size_gb: int = 256, bucket: str = "datakit", wandb: str | None = None) -> Plan:
    kind = kind_of(phase_path)
    phase, prefs = kind.load(phase_path), kind is PREFS
    cloud_name, region = parse_cloud(cloud)
    choice = parse_gpu(gpu)
    if nodes < 1:
        raise UserError(f"--nodes {nodes}: needs at least one node", field="--nodes", fix="use 1 (the plan) or more")
    if not 0 < mfu <= 1:
        raise UserError(f"--mfu {mfu} is not in (0, 1]", field="--mfu", fix="e.g. 0.4")
    n_gpus = nodes * choice.count
    from datakit_titan.estimate import check_fits
    from datakit_titan.phase import check_warmup

    check_fits(phase, choice.spec, n_gpus=n_gpus)  # refuses with `titan estimate`'s numbers
    check_warmup(phase, n_gpus)
    mixture = Path(phase.phase.mixture)
    if prefs and nodes > 1 and phase.phase.loss in ("sft_dpo", "dpo") and not (mixture / "refscore").is_dir():
        raise UserError("a multi-node phase-3 run needs the reference log-probs computed before it starts", file=phase.path,
                        field="--nodes", fix=f"run `titan refscore {phase.path}` here first (it is uploaded with the mixture), or use --nodes 1")
    price = find_price(cloud_name, region, choice, spot=spot, price_per_gpu_hour=price_per_hour)
    hours, tps = wall_hours(phase, choice, n_gpus, mfu)
    mode = wandb or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    opts = TaskOptions(cloud=cloud_name, region=region, accelerators=choice.sky_accelerators, gpus_per_node=choice.count, nodes=nodes,
                       spot=spot, disk_size_gb=disk_size_gb, bucket=bucket, wandb=mode, usd_per_gpu_hour=price.usd_per_gpu_hour,
                       price_source=price.source[:200])
    init_local = bool(phase.phase.init_from) and Path(phase.phase.init_from).is_dir()
    task = build_task(phase, opts, prefs=prefs, mixture_local=mixture.is_dir(), init_local=init_local)
    return Plan(phase, choice, nodes, price, hours, tps, task, to_yaml(task))


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


def describe(plan: Plan, *, validated: dict | None, mfu: float) -> str:
    ph, g = plan.phase, plan.gpu
    p = PRESETS[ph.phase.model]
    st = ph.stage[-1]
    mem = memory_per_gpu(p, phase_vocab(ph), seq_len=st.seq_len, micro_batch=ph.batch.per_gpu, optimizer=ph.optimizer.name,
                         param_dtype=ph.parallel.param_dtype, activation_checkpointing=ph.parallel.activation_checkpointing,
                         n_gpus=plan.n_gpus, reshard_after_forward=ph.parallel.fsdp_reshard_after_forward)["total"]
    r = plan.task["resources"]
    kind = "spot" if r["use_spot"] else "on-demand"
    lines = [
        f"titan launch {ph.path}: {plan.nodes} node(s) x {g.sky_accelerators} on {r['infra']} ({kind}), phase {ph.phase.name}, "
        f"{ph.phase.tokens:,} tokens",
        f"  memory: ~{mem / GIB:.1f} GiB per GPU at seq_len {st.seq_len} by `titan estimate`; the {g.spec.name} has {g.spec.memory_gib:g} GiB: fits",
        f"  time:   {ph.phase.tokens:,} tokens at {mfu:.0%} MFU of {g.spec.peak_bf16_tflops:g} TFLOPS x {plan.n_gpus} GPU = "
        f"{plan.tokens_per_s:,.0f} tokens/s -> {plan.hours:,.1f} h ({duration(plan.hours * 3600)}) of training, plus provisioning and setup",
        f"  price:  ${plan.price.usd_per_node_hour:,.3f}/node-hour = ${plan.price.usd_per_gpu_hour:,.3f}/GPU-hour"
        + (f" ({plan.price.instance_type}" + (f", {plan.price.region}" if plan.price.region else "") + ")" if plan.price.instance_type else "")
        + f"; source: {plan.price.source}",
        *([f"          {plan.price.note}"] if plan.price.note else []),
        f"  cost:   {plan.hours:,.1f} h x {plan.nodes} node(s) x ${plan.price.usd_per_node_hour:,.3f} = ${plan.usd:,.2f}",
    ]
    claim = getattr(ph, "plan_claim", None)
    if claim is not None and claim.usd is not None:
        lines.append(f"  plan:   the seed plan says ${claim.usd:,.2f} for this phase ({claim.note or 'see [plan_claim]'}); `titan estimate` checks its arithmetic")
    up = workdir_bytes()
    lines.append("  upload: workdir " + (f"{mib(up[0])} in {up[1]:,} files (.gitignore'd files stay here)" if up else "(not a git checkout: SkyPilot uploads it whole)"))
    for mount, spec in plan.task["file_mounts"].items():
        src = spec.get("source")
        if src:
            size, n = folder_bytes(Path(src))
            what = f"{src} ({mib(size)} in {n:,} files) uploaded to bucket {spec['name']}"
        else:
            what = f"bucket {spec['name']} as it is (nothing uploaded from here)"
        lines.append(f"          {mount} <- {what}, mode {spec['mode']}")
    if ph.phase.init_from and "/datakit/init" not in plan.task["file_mounts"]:
        lines.append(f"          init_from {ph.phase.init_from} is not here: read from the outputs bucket (a previous `titan launch` wrote it)")
    if not Path(ph.phase.mixture).is_dir():
        lines.append(f"          the mixture {ph.phase.mixture} is not built here: the job expects it in its bucket already")
    if validated:
        v = validated["resources"][0]
        lines.append(f"  SkyPilot {validated['version']} parsed the task: {v['cloud']} {v['accelerators']} spot={v['use_spot']} "
                     f"disk={v['disk_size']} GB, {validated['num_nodes']} node(s), mounts {sorted(validated['storage_mounts'])}"
                     + (f", secret {validated['managed_secrets']} passed at launch" if validated["managed_secrets"] else ", wandb offline (no secret)"))
    else:
        lines.append(f"  SkyPilot is not installed here: the task was not parsed by SkyPilot ({sky.INSTALL_FIX})")
    return "\n".join(lines)


def write_task(plan: Plan) -> Path:
    TASK_DIR.mkdir(parents=True, exist_ok=True)
    path = TASK_DIR / f"{plan.task['name']}.sky.yaml"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(plan.yaml)
    os.replace(tmp, path)
    return path


def launch(phase_path, *, dry_run: bool, mfu: float = 0.4, **kw) -> Plan:
    plan = plan_launch(phase_path, mfu=mfu, **kw)
    path = write_task(plan)
    validated = sky.validate_task(path) if sky.sky_python() is not None else None
    print(describe(plan, validated=validated, mfu=mfu))
    print(f"  task:   {path}")
    if dry_run:
        print("--- SkyPilot task YAML ---")
        print(plan.yaml, end="")
        print("--- dry run: nothing launched; without --dry-run this runs:")
        print(f"  sky jobs launch {path} -n {plan.task['name']} -y" + (" --secret WANDB_API_KEY" if "secrets" in plan.task else ""))
        return plan
    if "secrets" in plan.task and not os.environ.get("WANDB_API_KEY"):
        raise UserError("--wandb online needs your wandb key", field="WANDB_API_KEY",
                        fix="export WANDB_API_KEY=... (it is passed to the job as a secret), or use --wandb offline")
    cloud = plan.task["resources"]["infra"].split("/")[0]
    sky.check_cloud(cloud)
    args = ["jobs", "launch", str(path), "-n", plan.task["name"], "-y"]
    if "secrets" in plan.task:
        args += ["--secret", "WANDB_API_KEY"]  # the value is read from this environment by `sky`, never written to a file
    rc = sky.sky_cli(args)
    if rc != 0:
        raise UserError(f"`sky jobs launch` failed (exit {rc}); its output is above", file=str(path), fix="read SkyPilot's message; `titan status` lists jobs")
    print(f"launched {plan.task['name']}: `titan status`, `titan logs {plan.task['name']}`, `titan down {plan.task['name']}`")
    return plan
