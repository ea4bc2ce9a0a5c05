"""Phase file -> TorchTitan `Trainer.Config`: the adapter's config registry.

TorchTitan calls registry functions without arguments (`--module datakit_titan --config phase`),
so `phase()` reads which phase file, stage and device to build from the environment that the
launcher (`datakit_titan.train`) sets. `build_config()` is the same thing as a plain function.
"""

from __future__ import annotations

import os
from pathlib import Path

from torchtitan.components.checkpoint import CheckpointManager
from torchtitan.components.loss import ChunkedLossWrapper, CrossEntropyLoss
from torchtitan.components.optimizer import LRSchedulersContainer, ParamGroupConfig
from torchtitan.config import CompileConfig, ParallelismConfig, TrainingConfig
from torchtitan.config.configs import CommConfig, DebugConfig
from torchtitan.distributed.activation_checkpoint import FullAC, SelectiveAC

from datakit_titan.adafactor import DatakitOptimizers
from datakit_titan.cost_metrics import CostMetricsProcessor
from datakit_titan.dataloader import MixtureDataLoader
from datakit_titan.phase import Phase, load_phase
from datakit_titan.spec import model_spec
from datakit_titan.tokenizer import MixtureTokenizer
from datakit_titan.trainer import DatakitTrainer
from datakit_titan.validate import final_checkpoint, model_vocab

ENV_PHASE, ENV_STAGE, ENV_DEVICE, ENV_STEPS, ENV_VERIFIED, ENV_WANDB = (
    "DATAKIT_TITAN_PHASE", "DATAKIT_TITAN_STAGE", "DATAKIT_TITAN_DEVICE", "DATAKIT_TITAN_STEPS", "DATAKIT_TITAN_VERIFIED",
    "DATAKIT_TITAN_WANDB",
)
# the run's price for cost.json: `titan run --price-per-hour`, or what `titan launch` found (task envs)
ENV_PRICE, ENV_PRICE_SOURCE = "DATAKIT_TITAN_USD_PER_GPU_HOUR", "DATAKIT_TITAN_PRICE_SOURCE"


def cost_fields(phase: Phase, stage: int, vocab: int) -> dict:
    """CostMetricsProcessor.Config fields: phase, stage, price and the estimate's FLOPs/token (datakit_titan.cost)."""
    from datakit_titan.estimate import flops_per_token
    from datakit_titan.presets import PRESETS

    price = os.environ.get(ENV_PRICE)
    return dict(
        phase_name=phase.phase.name, stage=stage + 1, usd_per_gpu_hour=float(price) if price else None,
        price_source=os.environ.get(ENV_PRICE_SOURCE, "--price-per-hour" if price else ""),
        stage_tokens=phase.stage_tokens()[stage],
        flops_per_token=flops_per_token(PRESETS[phase.phase.model], vocab, phase.stage[stage].seq_len)["total"],
    )


def wandb_mode(phase: Phase) -> str:
    """offline | online | off: the phase's, unless `titan run --wandb` overrides it."""
    return os.environ.get(ENV_WANDB) or phase.metrics.wandb


def optimizer_config(phase: Phase, device: str) -> DatakitOptimizers.Config:
    o = phase.optimizer
    if o.name == "adamw":
        name, kwargs = "AdamW", {"lr": o.lr, "betas": tuple(o.betas), "eps": o.eps, "weight_decay": o.weight_decay}
    else:
        name, kwargs = "Adafactor", {"lr": o.lr, "weight_decay": o.weight_decay}
    return DatakitOptimizers.Config(
        param_groups=[ParamGroupConfig(pattern=r".*", optimizer_name=name, optimizer_kwargs=kwargs)],
        implementation="foreach" if device == "cpu" or o.name == "adafactor" else "fused",
    )


def build_config(phase: Phase, *, stage: int = 0, device: str = "cuda", n_gpus: int = 1, max_steps: int | None = None) -> DatakitTrainer.Config:
    """The TorchTitan config for one stage of a phase (stages run one after another, each in its
    own folder; stage k > 0 starts from stage k-1's full state)."""
    mixture = Path(phase.phase.mixture).resolve()
    vocab = model_vocab(phase)
    steps = phase.stage_steps(n_gpus)
    total_steps = sum(steps)
    end_step = sum(steps[: stage + 1])
    phase_end = end_step == total_steps
    if max_steps is not None:  # a short run (tests, demos): the LR schedule still spans the phase
        phase_end = phase_end and max_steps >= end_step
        end_step = min(end_step, max_steps)
    if stage == 0:
        init = final_checkpoint(phase.phase.init_from, phase) if phase.phase.init_from else None
        init_model_only = True  # a previous phase hands over weights only
    else:
        init = final_checkpoint(phase.stage_dir(stage - 1), phase)
        init_model_only = False  # a seq-len stage hand-off keeps optimizer, schedule, step and data cursor
    spec = model_spec(phase.phase.model, vocab, attn_backend=phase.parallel.attention)
    ac = {"none": None, "full": FullAC.Config(), "selective": SelectiveAC.Config()}[phase.parallel.activation_checkpointing]
    return DatakitTrainer.Config(
        model_spec=spec,
        hf_assets_path=str(mixture),
        dump_folder=str(phase.stage_dir(stage).resolve()),
        tokenizer=MixtureTokenizer.Config(),
        dataloader=MixtureDataLoader.Config(mixture=str(mixture), verify_sha256=os.environ.get(ENV_VERIFIED) != "1",
                                            document_masking=phase.parallel.document_masking),
        loss=ChunkedLossWrapper.Config(loss_fn=CrossEntropyLoss.Config(global_vocab_size=vocab)),
        optimizer=optimizer_config(phase, device),
        lr_scheduler=LRSchedulersContainer.Config(
            warmup_steps=min(phase.optimizer.warmup_steps, max(total_steps - 1, 0)),
            total_steps=total_steps,
            decay_type=phase.optimizer.decay,
            min_lr_factor=phase.optimizer.min_lr_ratio,
        ),
        training=TrainingConfig(
            local_batch_size=phase.batch.per_gpu,
            global_batch_size=phase.batch.per_gpu * phase.batch.grad_accum * n_gpus,
            seq_len=phase.stage[stage].seq_len,
            steps=end_step,
            max_norm=1.0,
            dtype=phase.parallel.param_dtype,
            mixed_precision_param="float32" if device == "cpu" else phase.parallel.mixed_precision,
            disable_cuda_graphs=True,
        ),
        # data parallel only (FSDP2), on TorchTitan's classic DTensor path: the default
        # "spmd_types" backend refuses plain parameters in fully_shard once dp_shard > 1
        # (measured: torchtitan 0.3.0 + torch 2.13, 2 ranks)
        parallelism=ParallelismConfig(
            fsdp_reshard_after_forward=phase.parallel.fsdp_reshard_after_forward, spmd_backend="partial_dtensor"
        ),
        checkpoint=CheckpointManager.Config(
            enable=True,
            folder="checkpoint",
            interval=phase.checkpoint.interval,
            keep_latest_k=phase.checkpoint.keep_last,
            last_save_model_only=phase_end,  # the phase's final checkpoint: weights only, for the next phase
            initial_load_path=str(init) if init else None,
            initial_load_model_only=init_model_only,
        ),
        activation_checkpoint=ac,
        compile=CompileConfig(enable=phase.parallel.compile),
        metrics=CostMetricsProcessor.Config(  # TorchTitan's, plus <run>/cost.json and cost/* metrics
            log_freq=phase.metrics.log_every,
            enable_tensorboard=phase.metrics.tensorboard,
            enable_wandb=wandb_mode(phase) != "off",
            **cost_fields(phase, stage, vocab),
        ),
        comm=CommConfig(),
        debug=DebugConfig(seed=phase.phase.seed, deterministic=device == "cpu"),
    )


def phase() -> DatakitTrainer.Config:
    """Registry entry: the phase/stage/device named by the launcher's environment."""
    path = os.environ.get(ENV_PHASE)
    if not path:
        raise ValueError(f"set {ENV_PHASE} to a phase file (the `titan run` launcher does this)")
    steps = os.environ.get(ENV_STEPS)
    return build_config(
        load_phase(path),
        stage=int(os.environ.get(ENV_STAGE, "0")),
        device=os.environ.get(ENV_DEVICE, "cuda"),
        n_gpus=int(os.environ.get("WORLD_SIZE", "1")),
        max_steps=int(steps) if steps else None,
    )
