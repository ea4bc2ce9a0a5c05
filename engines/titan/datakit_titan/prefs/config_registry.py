"""Phase-3 phase file -> TorchTitan `Trainer.Config` (`--module datakit_titan.prefs --config phase`).

The run is the engine's own config (datakit_titan.config_registry.build_config: optimizer, LR
schedule, batch, checkpoints, init_from, metrics, parallelism) with four parts swapped:
the model spec gets the phase's RoPE (theta and/or scaling; the RoPE cache is not saved in
checkpoints, so the phase-2 weights load into a model that already has the new RoPE), the
dataloader reads `PairDataset` rows, the trainer is `PrefsTrainer` with the phase's loss, and
activation checkpointing comes from [parallel] (phase 3 defaults to "full").
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from torchtitan.components.loss import CrossEntropyLoss
from torchtitan.distributed.pipeline_parallel import pipeline_llm
from torchtitan.models.llama3 import parallelize_llama
from torchtitan.models.llama3.state_dict_adapter import Llama3StateDictAdapter
from torchtitan.protocols.model_spec import ModelSpec

from datakit_titan import config_registry as base
from datakit_titan.prefs.dataloader import PairDataLoader
from datakit.adapters.losses import NEEDS_REFERENCE, LossConfig
from datakit_titan.prefs.phase import PrefsPhase, load_prefs_phase
from datakit_titan.prefs.trainer import PrefsTrainer
from datakit_titan.spec import model_config
from datakit_titan.validate import final_checkpoint, model_vocab

ENV_REFERENCE = "DATAKIT_TITAN_REFERENCE"  # JSON of refscore.expected_reference, set once by the launcher


def prefs_model_spec(phase: PrefsPhase, vocab_size: int) -> ModelSpec:
    """The preset as a llama3 ModelSpec with the phase's RoPE (theta, llama/yarn scaling, max positions)."""
    preset = phase.preset()
    cfg = model_config(preset, vocab_size, phase.parallel.attention)
    r = phase.rope
    for layer in cfg.layers:
        rope = layer.attention.rope
        rope.theta, rope.max_seq_len = preset.rope_theta, preset.max_seq_len
        if r.scaling == "llama":
            rope.scaling, rope.scaling_factor, rope.original_max_position_embeddings = "llama", r.factor, r.original_seq_len
        elif r.scaling == "yarn":
            rope.scaling, rope.rope_factor, rope.original_seq_len = "yarn", r.factor, r.original_seq_len
    return ModelSpec(name="llama3", flavor=phase.phase.model, model=cfg, parallelize_fn=parallelize_llama,
                     pipelining_fn=pipeline_llm, post_optimizer_build_fn=None, state_dict_adapter=Llama3StateDictAdapter)


def reference_for(phase: PrefsPhase) -> dict | None:
    """The reference the run's DPO term must use: phase 2's final checkpoint (by sha256) and this RoPE."""
    if phase.phase.loss not in NEEDS_REFERENCE:
        return None
    from datakit_titan.prefs.refscore import expected_reference

    return expected_reference(final_checkpoint(phase.phase.init_from, phase), phase.rope.settings(phase.preset()))


def build_prefs_config(phase: PrefsPhase, *, device: str = "cuda", n_gpus: int = 1, max_steps: int | None = None,
                       reference: dict | None = None) -> PrefsTrainer.Config:
    cfg = base.build_config(phase, stage=0, device=device, n_gpus=n_gpus, max_steps=max_steps)
    vocab = model_vocab(phase)
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.init}
    fields.update(
        model_spec=prefs_model_spec(phase, vocab),
        dataloader=PairDataLoader.Config(
            mixture=str(Path(phase.phase.mixture).resolve()), loss=phase.phase.loss, phase_file=str(phase.path),
            reference=json.dumps(reference) if reference else "", verify_sha256=os.environ.get(base.ENV_VERIFIED) != "1",
        ),
        loss=CrossEntropyLoss.Config(global_vocab_size=vocab),  # unused: PrefsTrainer computes its own loss
        prefs=LossConfig(loss=phase.phase.loss, beta=phase.prefs.beta, w_sft=phase.prefs.w_sft, w_dpo=phase.prefs.w_dpo,
                         orpo_lambda=phase.prefs.orpo_lambda),
    )
    return PrefsTrainer.Config(**fields)


def phase() -> PrefsTrainer.Config:
    """Registry entry: the phase named by the launcher's environment (datakit_titan.train)."""
    path = os.environ.get(base.ENV_PHASE)
    if not path:
        raise ValueError(f"set {base.ENV_PHASE} to a phase file (the launcher does this)")
    p = load_prefs_phase(path)
    ref = os.environ.get(ENV_REFERENCE)
    steps = os.environ.get(base.ENV_STEPS)
    return build_prefs_config(p, device=os.environ.get(base.ENV_DEVICE, "cuda"), n_gpus=int(os.environ.get("WORLD_SIZE", "1")),
                              max_steps=int(steps) if steps else None, reference=json.loads(ref) if ref else reference_for(p))
