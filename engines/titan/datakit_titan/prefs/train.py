"""Per-rank entry point of a phase-3 run: `python -m datakit_titan.prefs.train <phase.toml>` (or under
torchrun). Sets the environment the config registry reads, applies the CPU patches for --device cpu,
and hands over to TorchTitan's `torchtitan.train.main` with `--module datakit_titan.prefs --config
phase`. Arguments after `--` are TorchTitan overrides.
"""

from __future__ import annotations

import argparse
import os
import sys

from datakit.errors import UserError
from datakit_titan import config_registry as reg
from datakit_titan.prefs.phase import load_prefs_phase
from datakit_titan.train import _free_port


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    if argv and argv[0] == "run":
        argv = argv[1:]
    ap = argparse.ArgumentParser(prog="python -m datakit_titan.prefs.train", description=__doc__)
    ap.add_argument("phase")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--steps", type=int, default=None, help="stop after this global step (short runs)")
    args = ap.parse_args(argv)
    try:
        phase = load_prefs_phase(args.phase)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if "WORLD_SIZE" not in os.environ:  # one process without torchrun
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    wandb = reg.wandb_mode(phase) if hasattr(reg, "wandb_mode") else phase.metrics.wandb
    if wandb == "offline":
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_PROJECT", phase.metrics.project)
    os.environ.setdefault("WANDB_RUN_NAME", phase.phase.name)
    os.environ.update({reg.ENV_PHASE: str(phase.path), reg.ENV_DEVICE: args.device, reg.ENV_STAGE: "0"})
    if args.steps is not None:
        os.environ[reg.ENV_STEPS] = str(args.steps)
    if args.device == "cpu":
        from datakit_titan import cpu

        cpu.enable()
    from torchtitan.train import main as torchtitan_main

    sys.argv = ["datakit_titan.prefs.train", "--module", "datakit_titan.prefs", "--config", "phase", *extra]
    try:
        torchtitan_main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
