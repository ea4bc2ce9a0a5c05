"""Phase files (TOML): what one training phase runs, validated before anything is built.

    [phase]
    name = "pretrain"
    mixture = "data/mixtures/pretrain"     # built mixture (Contract 2), relative to the cwd
    output = "outputs/pretrain"            # this phase's own folder (TorchTitan dump folder)
    model = "plan-1.6b"                    # preset in datakit_titan.presets
    tokens = "50B"                         # token budget; steps are derived from it; "mixture" = one
                                           #   pass over the built mixture (datakit_titan.budget)
    mixture_spec = "mixtures/pretrain.toml"  # the spec that builds `mixture` (sizes tokens = "mixture" early)
    max_epochs = 1.0                       # passes over the mixture the budget may ask for
    init_from = ""                         # a previous phase's output folder (weights only)
    seed = 1234

    [[stage]]                              # seq-len schedule; one TorchTitan run per stage
    seq_len = 1024
    tokens = "10B"                         # the last stage may omit it: it gets the rest
    [[stage]]
    seq_len = 2048

    [batch]      per_gpu = 2, grad_accum = 8
    [optimizer]  name = "adamw" | "adafactor", lr, weight_decay, betas, eps, warmup_steps, decay, min_lr_ratio
    [checkpoint] interval, keep_last
    [metrics]    log_every, wandb = "offline" | "online" | "off", tensorboard
    [parallel]   fsdp_reshard_after_forward, activation_checkpointing, compile, gpu, param_dtype,
                 mixed_precision, attention (flex | flex_flash | varlen), document_masking
    [plan_claim] the seed plan's time/cost figure for this phase (datakit_titan.plan_claim)

Unknown keys are errors. Every mistake is a `UserError` naming the file and field.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, ValidationError, field_validator

from datakit.errors import UserError
from datakit.spec.sizes import parse_size
from datakit.strict import StrictTypes
from datakit_titan.plan_claim import PlanClaim
from datakit_titan.presets import PRESETS

class PhaseInfo(StrictTypes):
    name: str
    mixture: str
    output: str
    model: str
    tokens: int | Literal["mixture"]  # "mixture": the mixture's total (datakit_titan.budget), a number after load_phase
    mixture_spec: str = ""  # the spec that builds `mixture`, to size tokens = "mixture" before the build
    max_epochs: float = Field(1.0, gt=0)  # passes over the mixture the token budget may ask for
    init_from: str = ""
    seed: int = Field(1234, ge=0)
    loss: Literal["lm"] = "lm"  # sft_dpo arrives with the long-context phase

    _tokens = field_validator("tokens", mode="before")(lambda cls, v: v if v == "mixture" else parse_size(v))

    @field_validator("tokens")
    @classmethod
    def _positive(cls, v: int | str) -> int | str:
        if v != "mixture" and v <= 0:
            raise ValueError('must be > 0 (e.g. "50B"), or "mixture" for one pass over the built mixture')
        return v


class Stage(StrictTypes):
    # at most the model's context (checked against the preset in load); "mixture": the mixture's seq_len (datakit_titan.budget)
    seq_len: int | Literal["mixture"]
    tokens: int | None = Field(None, gt=0)

    _tokens = field_validator("tokens", mode="before")(lambda cls, v: None if v is None else parse_size(v))

    @field_validator("seq_len", mode="plain")
    @classmethod
    def _seq_len(cls, v):
        if v == "mixture":
            return v
        if type(v) is not int:
            raise ValueError('must be a whole number of tokens (e.g. 2048), or "mixture" for the mixture\'s seq_len')
        if v < 8:
            raise ValueError("must be at least 8 tokens")
        return v


class Batch(StrictTypes):
    per_gpu: int = Field(2, gt=0)  # rows of seq_len per GPU per micro-step
    grad_accum: int = Field(8, gt=0)  # micro-steps per optimizer step


class Optimizer(StrictTypes):
    name: Literal["adamw", "adafactor"] = "adamw"
    lr: float = Field(3e-4, gt=0, le=1)
    weight_decay: float = Field(0.1, ge=0, le=1)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0, le=1)
    warmup_steps: int = Field(2000, ge=0)  # and at most the phase's steps: checked in load_phase / check_phase
    decay: Literal["cosine", "linear"] = "cosine"
    min_lr_ratio: float = Field(0.1, ge=0, le=1)

    @field_validator("betas", mode="before")
    @classmethod
    def _betas_array(cls, v):
        return tuple(v) if isinstance(v, list) else v  # a TOML array

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError("each beta must be in [0, 1), e.g. [0.9, 0.95]")
        return v


class Checkpoint(StrictTypes):
    interval: int = Field(1000, gt=0)
    keep_last: int = Field(3, ge=0)  # 0 keeps all; TorchTitan needs at least 2 otherwise


class Metrics(StrictTypes):
    log_every: int = Field(10, gt=0)
    wandb: Literal["offline", "online", "off"] = "offline"
    tensorboard: bool = True
    project: str = "datakit"


class Parallel(StrictTypes):
    fsdp_reshard_after_forward: Literal["default", "always", "never"] = "never"  # never = ZeRO-2
    activation_checkpointing: Literal["none", "selective", "full"] = "none"
    compile: bool = False
    gpu: str = ""  # catalogue name (datakit_titan.estimate.GPUS) the batch must fit; "" = don't check
    param_dtype: Literal["float32", "bfloat16"] = "float32"  # fp32 master weights + bf16 compute, or pure bf16
    mixed_precision: Literal["bfloat16", "float32"] = "bfloat16"  # FSDP2 compute dtype when param_dtype = float32
    # attention kernel (all mask packed documents apart): "flex" FlexAttention (any GPU; CPU smoke),
    # "flex_flash" FlexAttention's flash backend (Hopper/Blackwell), "varlen" flash-attention varlen (CUDA)
    attention: Literal["flex", "flex_flash", "varlen"] = "flex"
    document_masking: bool = True  # False: plain causal rows, attention crosses packed documents (cheaper; measured in benchmarks/gpu)


class Eval(StrictTypes):
    """`titan eval` at the end of the phase (`titan run` runs it on the final checkpoint)."""

    suite: str = "core"  # comma-separated: core, planning, longctx
    limit: int | None = Field(None, gt=0)  # items per benchmark (None: all the task data has)
    args: list[str] = Field(default_factory=list)  # more `titan eval` options, e.g. ["--per-cell", "8"]

    @field_validator("suite")
    @classmethod
    def _suites(cls, v: str) -> str:
        bad = [x for x in v.split(",") if x.strip() not in ("core", "planning", "longctx")]
        if bad or not v.strip():
            raise ValueError(f"unknown eval suite {bad[0].strip()!r}; use a comma-separated list of core, planning, longctx")
        return v


class Phase(StrictTypes):
    phase: PhaseInfo
    stage: list[Stage] = Field(min_length=1)
    batch: Batch = Field(default_factory=Batch)
    optimizer: Optimizer = Field(default_factory=Optimizer)
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    metrics: Metrics = Field(default_factory=Metrics)
    parallel: Parallel = Field(default_factory=Parallel)
    plan_claim: PlanClaim | None = None
    eval: Eval | None = None

    path: Path = Field(default=Path("."), exclude=True)
    tokens_basis: str = Field(default="phase.tokens", exclude=True)  # where phase.tokens came from
    context_from_preset: ClassVar[bool] = True  # stage seq_len <= the preset's max_seq_len (phase 3 stretches it with RoPE)

    # -- derived ----------------------------------------------------------------------------
    def stage_tokens(self) -> list[int]:
        """Tokens per stage: the stated ones, the last stage takes what is left of the budget."""
        stated = [s.tokens for s in self.stage]
        rest = self.phase.tokens - sum(t for t in stated if t is not None)
        return [t if t is not None else rest for t in stated]

    def tokens_per_step(self, stage: int, n_gpus: int = 1) -> int:
        """Global batch in tokens: per_gpu x grad_accum x GPUs x seq_len."""
        return self.batch.per_gpu * self.batch.grad_accum * n_gpus * self.stage[stage].seq_len

    def stage_steps(self, n_gpus: int = 1) -> list[int]:
        return [max(1, math.ceil(t / self.tokens_per_step(i, n_gpus))) for i, t in enumerate(self.stage_tokens())]

    def stage_end_step(self, stage: int, n_gpus: int = 1, max_steps: int | None = None) -> int:
        """Global step at which `stage` ends (steps count on across stages), capped by max_steps."""
        end = sum(self.stage_steps(n_gpus)[: stage + 1])
        return min(end, max_steps) if max_steps is not None else end

    def stage_done(self, stage: int, n_gpus: int = 1, max_steps: int | None = None) -> bool:
        """True when the stage's final checkpoint exists (rerunning it would have nothing to do)."""
        return (self.stage_dir(stage) / "checkpoint" / f"step-{self.stage_end_step(stage, n_gpus, max_steps)}").is_dir()

    def stage_dir(self, stage: int) -> Path:
        """Each stage is its own TorchTitan run folder (TorchTitan applies an initial checkpoint
        only to an empty checkpoint folder)."""
        out = Path(self.phase.output)
        return out if len(self.stage) == 1 else out / f"stage{stage + 1}-seq{self.stage[stage].seq_len}"


def load_phase(path: str | Path, cls: type[Phase] | None = None, example: str = "engines/titan/phases/smoke.toml") -> Phase:
    """Read and validate a phase file; every mistake is a UserError naming file and field.

    cls: the phase model (phase 3 passes its PrefsPhase and adds its own checks on top)."""
    cls = cls or Phase
    path = Path(path)
    if not path.exists():
        raise UserError("phase file does not exist", file=path, fix=f"pass a file like {example}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"not valid TOML: {e}", file=path, fix="fix the TOML syntax") from e
    try:
        phase = cls.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        where = cls.__module__.replace(".", "/") + ".py"
        raise UserError(err["msg"], file=path, field=field, fix=f"see the field list at the top of {where}") from e
    phase.path = path
    if phase.phase.model not in PRESETS:
        raise UserError(f"unknown model preset {phase.phase.model!r}", file=path, field="phase.model", fix=f"use one of {sorted(PRESETS)}")
    from datakit_titan.budget import resolve_seq_len, resolve_tokens

    resolve_tokens(phase)  # tokens = "mixture" -> the manifest's (or spec's) total
    resolve_seq_len(phase)  # seq_len = "mixture" -> the manifest's (or spec's) seq_len
    tokens = phase.stage_tokens()
    if any(t <= 0 for t in tokens):
        raise UserError(
            f"stage token budgets {tokens} leave nothing for a stage (phase.tokens = {phase.phase.tokens:,})",
            file=path, field="stage.tokens", fix="make phase.tokens larger than the stated stage tokens",
        )
    if cls.context_from_preset:
        preset = PRESETS[phase.phase.model]
        for i, st in enumerate(phase.stage):
            if st.seq_len > preset.max_seq_len:
                raise UserError(f"seq_len {st.seq_len} exceeds the model's {preset.max_seq_len} positions", file=path,
                                field=f"stage.{i}.seq_len", fix=f"use at most {preset.max_seq_len}, or a model preset with a longer context")
    if phase.checkpoint.keep_last == 1:
        raise UserError("keep_last = 1 is not allowed (the newest may still be saving)", file=path, field="checkpoint.keep_last", fix="use 0 (keep all) or >= 2")
    check_warmup(phase, n_gpus=1)
    return phase


def check_warmup(phase: Phase, n_gpus: int) -> None:
    """Warmup longer than the run would never reach the peak learning rate (steps shrink as GPUs grow)."""
    steps = sum(phase.stage_steps(n_gpus))
    if phase.optimizer.warmup_steps > steps:
        raise UserError(
            f"warmup_steps = {phase.optimizer.warmup_steps:,}{'' if 'warmup_steps' in phase.optimizer.model_fields_set else ' (the default)'} "
            f"but the phase has {steps:,} steps on {n_gpus} GPU(s): "
            "the learning rate would never reach its peak", file=phase.path, field="optimizer.warmup_steps",
            fix=f"set [optimizer] warmup_steps <= {steps:,} (e.g. {max(1, steps // 100):,}, 1% of the steps), or raise phase.tokens",
        )
