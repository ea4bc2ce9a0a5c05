"""Phase-3 phase files: a phase file (datakit_titan.phase) plus the loss and the RoPE change.

    [phase]
    loss = "sft_dpo"            # "sft_dpo" | "sft" | "dpo" | "orpo"
    init_from = "outputs/midtrain"   # phase 2: the starting weights and the DPO reference

    [prefs]
    beta = 0.1                  # DPO temperature
    w_sft = 1.0                 # total = w_sft * sft + w_dpo * dpo  (the plan: sft + 0.5 * dpo)
    w_dpo = 0.5
    orpo_lambda = 0.1           # loss = "orpo": sft + lambda * odds-ratio term

    [rope]                      # applied to the model after the phase-2 weights load (the RoPE cache
    theta = 500_000.0           # is not in the checkpoint): a new base, and/or TorchTitan's scaling
    scaling = "none"            # "none" | "llama" | "yarn"
    factor = 1.0                # llama: scaling_factor; yarn: rope_factor
    original_seq_len = 2048     # the context the weights were trained at (llama / yarn)

Everything else is the phase format of datakit_titan.phase (stages, batch, optimizer, checkpoint,
metrics, parallel); unknown keys are errors, every mistake a UserError naming file and field.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from datakit.errors import UserError
from datakit.strict import StrictTypes
from datakit_titan.phase import Parallel, Phase, PhaseInfo, load_phase
from datakit_titan.presets import PRESETS, Preset


class PrefsInfo(PhaseInfo):
    loss: Literal["sft_dpo", "sft", "dpo", "orpo"] = "sft_dpo"


class PrefsLoss(StrictTypes):
    beta: float = Field(0.1, gt=0)
    w_sft: float = Field(1.0, ge=0)
    w_dpo: float = Field(0.5, ge=0)
    orpo_lambda: float = Field(0.1, ge=0)


class Rope(StrictTypes):
    theta: float | None = Field(None, gt=0)  # None: the preset's (phase 2's) theta
    scaling: Literal["none", "llama", "yarn"] = "none"
    factor: float = Field(1.0, ge=1.0)
    original_seq_len: int | None = Field(None, gt=0)

    def settings(self, preset: Preset) -> dict:
        """The RoPE the model runs with, as recorded with the reference log-probs."""
        return {"theta": float(self.theta or preset.rope_theta), "scaling": self.scaling, "factor": float(self.factor),
                "original_seq_len": self.original_seq_len}


class PrefsParallel(Parallel):
    activation_checkpointing: Literal["none", "selective", "full"] = "full"  # 8192 context: on by default


class PrefsPhase(Phase):
    context_from_preset: ClassVar[bool] = False  # the [rope] section stretches the context past the preset's
    phase: PrefsInfo
    parallel: PrefsParallel = Field(default_factory=PrefsParallel)
    prefs: PrefsLoss = Field(default_factory=PrefsLoss)
    rope: Rope = Field(default_factory=Rope)

    def preset(self) -> Preset:
        """The model preset with this phase's RoPE base and the longest stage as max positions."""
        p = PRESETS[self.phase.model]
        return dataclasses.replace(p, rope_theta=float(self.rope.theta or p.rope_theta),
                                   max_seq_len=max(p.max_seq_len, max(s.seq_len for s in self.stage)))


def load_prefs_phase(path: str | Path) -> PrefsPhase:
    """Read and validate a phase-3 phase file (same checks as datakit_titan.phase.load_phase)."""
    path = Path(path)
    phase = load_phase(path, cls=PrefsPhase, example="engines/titan/phases/smoke_sft_dpo.toml")
    if len(phase.stage) != 1:
        raise UserError("a phase-3 run has one stage (one seq_len)", file=path, field="stage", fix="keep one [[stage]]")
    if phase.rope.scaling != "none" and phase.rope.original_seq_len is None:
        raise UserError(f"rope.scaling = {phase.rope.scaling!r} needs the context the weights were trained at", file=path,
                        field="rope.original_seq_len", fix="set it to phase 2's seq_len, e.g. 2048")
    if phase.phase.loss in ("sft_dpo", "dpo") and not phase.phase.init_from:
        raise UserError(f"loss {phase.phase.loss!r} needs a reference model: the checkpoint this phase starts from", file=path,
                        field="phase.init_from", fix="set init_from to phase 2's output folder, e.g. \"outputs/midtrain\"")
    return phase


def is_prefs_phase(path: str | Path) -> bool:
    """Whether a phase file is a phase-3 one (its [phase] loss is sft_dpo / sft / dpo / orpo): the
    `titan run` dispatch. Unreadable files answer False and fail in the regular loader."""
    try:
        loss = tomllib.loads(Path(path).read_text()).get("phase", {}).get("loss", "lm")
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return loss in ("sft_dpo", "sft", "dpo", "orpo")
