"""Per-rank entry point for every kind of phase: `python -m datakit_titan.train <phase.toml>` (or under torchrun).

    torchrun --nproc-per-node 8 -m datakit_titan.train run engines/titan/phases/pretrain.toml

Sets the environment the config registry reads, applies the CPU patches when --device cpu, and
hands over to TorchTitan's own `torchtitan.train.main` with `--module <the phase kind's registry>
--config phase` (datakit_titan, or datakit_titan.prefs for phase 3). Arguments after `--` are
TorchTitan overrides (e.g. `-- --training.steps 5`).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from datakit.errors import UserError
from datakit_titan import config_registry as reg
from datakit_titan.kinds import kind_of


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    if argv and argv[0] == "run":
        argv = argv[1:]
    ap = argparse.ArgumentParser(prog="python -m datakit_titan.train", description=__doc__)
    ap.add_argument("phase")
    ap.add_argument("--stage", type=int, default=None, help="run only this stage (0-based); default all, in order")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--steps", type=int, default=None, help="stop after this global step (short runs)")
    args = ap.parse_args(argv)
    if "WORLD_SIZE" not in os.environ:  # one process without torchrun
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    kind = kind_of(args.phase)
    try:
        phase = kind.load(args.phase)
        if os.environ.get(reg.ENV_VERIFIED) != "1":  # launched directly (torchrun), not by `titan run`
            from datakit_titan.validate import check_phase

            check_phase(phase, device=args.device, n_gpus=int(os.environ["WORLD_SIZE"]))
            os.environ[reg.ENV_VERIFIED] = "1"
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if reg.wandb_mode(phase) == "offline":
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_PROJECT", phase.metrics.project)
    os.environ[reg.ENV_PHASE] = str(phase.path)
    os.environ[reg.ENV_DEVICE] = args.device
    if args.steps is not None:
        os.environ[reg.ENV_STEPS] = str(args.steps)
    if args.device == "cpu":
        from datakit_titan import cpu

        cpu.enable()
    from torchtitan.train import main as torchtitan_main

    stages = [args.stage] if args.stage is not None else range(len(phase.stage))
    n_gpus = int(os.environ["WORLD_SIZE"])
    run_name = os.environ.get("WANDB_RUN_NAME")
    for stage in stages:
        if stage > 0 and args.steps is not None and phase.stage_end_step(stage - 1, n_gpus) >= args.steps:
            break
        if phase.stage_done(stage, n_gpus, args.steps):
            print(f"stage {stage + 1}: already at step {phase.stage_end_step(stage, n_gpus, args.steps)}, skipped")
            continue
        os.environ[reg.ENV_STAGE] = str(stage)
        os.environ["WANDB_RUN_NAME"] = run_name or (f"{phase.phase.name}-stage{stage + 1}" if len(phase.stage) > 1 else phase.phase.name)
        sys.argv = ["datakit_titan.train", "--module", kind.titan_module, "--config", "phase", *extra]
        try:
            torchtitan_main()
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
