"""`titan run`: check a phase of either kind, then run its training processes, one per seq-len stage.

Every check (mixture sha256, vocab, init_from, memory, reference log-probs) runs here, before any model
is built; each stage then runs in its own process (`python -m datakit_titan.train`, through torchrun
when nproc > 1 or across nodes). A stage whose final checkpoint exists is skipped; rerunning resumes from the
newest one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from datakit.errors import UserError
from datakit_titan.kinds import PREFS, kind_of
from datakit_titan.nodes import Nodes
from datakit_titan.phase import Phase


def run_phase(
    path: str | Path,
    *,
    device: str = "cuda",
    nproc: int = 1,
    max_steps: int | None = None,
    extra: list[str] | None = None,
    wandb: str | None = None,
    stdout=None,
    nodes: Nodes = Nodes(),
) -> Phase:
    """Validate a phase (pretrain / mid-train / phase 3), then run its stages one after another.

    device: "cuda" or "cpu" (smoke mode). nproc: processes (GPUs) on this node, through torchrun
    when > 1. max_steps: stop after this global step (the LR schedule still spans the phase).
    extra: TorchTitan overrides passed through (e.g. ["--training.max_norm", "0.5"]).
    wandb: "offline" | "online" | "off" instead of the phase's [metrics] wandb.
    nodes: the machines of a multi-node job (this one's rank among them); the global batch and the steps
    count all nnodes x nproc ranks.
    """
    out = stdout or sys.stdout
    kind = kind_of(path)
    phase = kind.load(path)
    world = nodes.world(nproc)
    check = _check_prefs if kind is PREFS else _check_lm
    env = launch_env(wandb, **check(phase, device=device, nproc=nproc, nodes=nodes, out=out))
    for i in range(len(phase.stage)):
        if i > 0 and max_steps is not None and phase.stage_end_step(i - 1, world) >= max_steps:
            break
        if phase.stage_done(i, world, max_steps):
            print(f"  stage {i + 1}: already at step {phase.stage_end_step(i, world, max_steps)}, skipped", file=out)
            continue
        args = [str(phase.path), "--stage", str(i), "--device", device]
        if max_steps is not None:
            args += ["--steps", str(max_steps)]
        if extra:
            args += ["--", *extra]
        launch("datakit_titan.train", args, nproc=nproc, env=env, stdout=stdout, what=f"stage {i + 1} of {phase.path}", file=phase.path,
               nodes=nodes)
    return phase


def _check_lm(phase, *, device: str, nproc: int, nodes: Nodes, out) -> dict:
    """Mixture, vocab, init_from, memory on this GPU, token budget; prints the stages. No extra environment."""
    from datakit_titan.budget import check_budget
    from datakit_titan.export.checkpoint import record_phase
    from datakit_titan.validate import check_phase

    gpu_mem = None
    if device == "cuda":
        import torch

        if torch.cuda.is_available():
            gpu_mem = torch.cuda.get_device_properties(0).total_memory / 1024**3
    world = nodes.world(nproc)
    manifest = check_phase(phase, device=device, n_gpus=world, gpu_memory_gib=gpu_mem)
    if nodes.node_rank == 0:  # one writer on the shared output folder (two nodes renaming one temp file race)
        record_phase(phase.path)  # <output>/phase.toml: what `titan export <output>` reads (only once the phase checks out)
    steps = phase.stage_steps(world)
    where = f"{nproc} x {device}" if nodes.nnodes == 1 else (
        f"{nodes.nnodes} nodes x {nproc} x {device} (this is node {nodes.node_rank}, rendezvous {nodes.master_addr}:{nodes.master_port})")
    print(f"phase {phase.phase.name}: mixture {phase.phase.mixture} ({manifest.total_tokens:,} tokens, "
          f"{len(manifest.sources)} sources), model {phase.phase.model}, {where}", file=out)
    print(f"  {check_budget(phase, manifest)}", file=out)
    for i, st in enumerate(phase.stage):
        print(f"  stage {i + 1}: seq_len {st.seq_len}, global batch {phase.tokens_per_step(i, world):,} tokens "
              f"({phase.batch.per_gpu} x {phase.batch.grad_accum} accum x {world}), {steps[i]:,} steps -> {phase.stage_dir(i)}", file=out)
    return {}


def _check_prefs(phase, *, device: str, nproc: int, nodes: Nodes, out) -> dict:
    """Mixture, vocab, init_from, seq_len and the reference log-probs; every data error before the model is
    built. Returns the reference the training processes check against (their environment)."""
    from datakit_titan.dataset import PairDataset
    from datakit_titan.export.checkpoint import record_phase
    from datakit_titan.prefs.config_registry import ENV_REFERENCE, reference_for
    from datakit_titan.validate import check_phase

    manifest = check_phase(phase, device=device, n_gpus=nodes.world(nproc))
    ref = reference_for(phase)
    PairDataset(phase.phase.mixture, seq_len=phase.stage[0].seq_len, batch_rows=phase.batch.per_gpu, loss=phase.phase.loss,
                reference=ref, manifest=manifest, phase_file=str(phase.path))
    if nodes.node_rank == 0:  # one writer on the shared output folder
        record_phase(phase.path)  # <output>/phase.toml: what `titan export <output>` reads
    print(f"phase {phase.phase.name}: loss {phase.phase.loss}, mixture {phase.phase.mixture}, model {phase.phase.model}, "
          f"RoPE {phase.rope.settings(phase.preset())}, seq_len {phase.stage[0].seq_len}, "
          f"{phase.batch.per_gpu} rows x {phase.batch.grad_accum} accum x {nodes.world(nproc)} -> {phase.phase.output}", file=out)
    return {ENV_REFERENCE: json.dumps(ref)} if ref else {}


def launch_env(wandb: str | None, **extra: str) -> dict:
    """Environment of a training process: shards already verified here, the --wandb override, and extras."""
    env = dict(os.environ, DATAKIT_TITAN_VERIFIED="1", **extra)
    if wandb:
        if wandb not in ("offline", "online", "off"):
            raise UserError(f"unknown wandb mode {wandb!r}", field="--wandb", fix="use offline, online or off")
        env["DATAKIT_TITAN_WANDB"] = wandb  # read by datakit_titan.config_registry.wandb_mode
    return env


def launch(module: str, args: list[str], *, nproc: int, env: dict, stdout, what: str, file, nodes: Nodes = Nodes()) -> None:
    """Run a training module in its own process (torchrun when nproc > 1 or across nodes); exit code 2 = a user error."""
    prefix = nodes.launcher(nproc)
    rc = subprocess.run([*prefix, "-m", module, *args], env=env, stdout=stdout, stderr=subprocess.STDOUT if stdout else None).returncode
    if rc == 2:
        raise UserError(f"{what} stopped on a user error (printed above)", file=file)
    if rc != 0:
        raise RuntimeError(f"{what} failed with exit code {rc}")
