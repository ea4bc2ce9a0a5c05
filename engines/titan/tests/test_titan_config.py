"""Phase file -> TorchTitan Trainer.Config: the fields a run depends on."""

from __future__ import annotations

from pathlib import Path

import pytest
from titan_fixture import phase_file

from datakit_titan.config_registry import ENV_WANDB, build_config
from datakit_titan.phase import load_phase


def test_single_stage_phase(tmp_path, mixture, monkeypatch):
    phase = load_phase(phase_file(tmp_path, mixture, tokens="8192"))  # 4 rows x 2 accum x 64 = 512 tokens/step
    cfg = build_config(phase, device="cpu")
    assert cfg.training.seq_len == 64 and cfg.training.local_batch_size == 4 and cfg.training.global_batch_size == 8
    assert cfg.training.steps == 16 and cfg.lr_scheduler.total_steps == 16
    assert cfg.dataloader.mixture == str(Path(mixture).resolve())
    assert cfg.model_spec.model.vocab_size == 512 and cfg.model_spec.model.enable_weight_tying
    assert cfg.checkpoint.enable and cfg.checkpoint.last_save_model_only  # the phase's end: weights only
    assert cfg.checkpoint.initial_load_path is None
    assert cfg.parallelism.fsdp_reshard_after_forward == "never" and cfg.parallelism.spmd_backend == "partial_dtensor"
    assert cfg.metrics.enable_wandb and cfg.metrics.enable_tensorboard  # wandb offline by default
    assert cfg.dump_folder == str((tmp_path / "out").resolve())
    short = build_config(phase, device="cpu", max_steps=5)
    assert short.training.steps == 5 and short.lr_scheduler.total_steps == 16 and not short.checkpoint.last_save_model_only
    monkeypatch.setenv(ENV_WANDB, "off")
    assert not build_config(phase, device="cpu").metrics.enable_wandb


def test_seq_len_stages_hand_over_full_state(tmp_path, mixture):
    path = phase_file(tmp_path, mixture, tokens="8192")
    path.write_text(path.read_text().replace("[[stage]]\nseq_len = 64", "[[stage]]\nseq_len = 32\ntokens = 2048\n[[stage]]\nseq_len = 64"))
    phase = load_phase(path)
    assert phase.stage_steps() == [8, 12]
    s1 = build_config(phase, stage=0, device="cpu")
    assert s1.training.steps == 8 and not s1.checkpoint.last_save_model_only and s1.dump_folder.endswith("stage1-seq32")
    step8 = tmp_path / "out" / "stage1-seq32" / "checkpoint" / "step-8"
    step8.mkdir(parents=True)
    s2 = build_config(phase, stage=1, device="cpu")
    assert s2.training.steps == 20 and s2.training.seq_len == 64 and s2.checkpoint.last_save_model_only
    assert s2.checkpoint.initial_load_path == str(step8) and s2.checkpoint.initial_load_model_only is False


def test_init_from_is_weights_only(tmp_path, mixture):
    prev = tmp_path / "pretrain" / "checkpoint"
    for step in (10, 200, 30):
        (prev / f"step-{step}").mkdir(parents=True)
    phase = load_phase(phase_file(tmp_path, mixture, init_from=f'"{tmp_path / "pretrain"}"'))
    cfg = build_config(phase, device="cpu")
    assert cfg.checkpoint.initial_load_path == str(prev / "step-200") and cfg.checkpoint.initial_load_model_only


def test_adafactor_phase_uses_the_registered_optimizer(tmp_path, mixture):
    cfg = build_config(load_phase(phase_file(tmp_path, mixture, optimizer='"adafactor"')), device="cpu")
    assert [g.optimizer_name for g in cfg.optimizer.param_groups] == ["Adafactor"]
    with pytest.raises(NotImplementedError):  # TorchTitan's own container does not know it
        from torchtitan.components.optimizer import OptimizersContainer

        OptimizersContainer._resolve_optimizer_factory("Adafactor")


def test_rerunning_a_finished_phase_skips_its_stages(tmp_path, mixture):
    """A stage whose final checkpoint exists is not launched again (its last checkpoint is
    weights-only and could not be resumed from)."""
    import io

    from datakit_titan.launch import run_phase

    path = phase_file(tmp_path, mixture, tokens="8192")
    (tmp_path / "out" / "checkpoint" / "step-16").mkdir(parents=True)
    out = io.StringIO()
    run_phase(path, device="cpu", stdout=out)
    assert "stage 1: already at step 16, skipped" in out.getvalue()
    assert "global batch 512 tokens (4 x 2 accum x 1)" in out.getvalue()
    out = io.StringIO()
    (tmp_path / "out" / "checkpoint" / "step-5").mkdir()
    run_phase(path, device="cpu", stdout=out, max_steps=5)
    assert "already at step 5" in out.getvalue()


def test_attention_kernel_and_document_masking_reach_the_model_and_the_dataloader(tmp_path, mixture):
    from torchtitan.models.common.attention import FlexAttention, VarlenAttention

    default = build_config(load_phase(phase_file(tmp_path, mixture)), device="cpu")
    assert isinstance(default.model_spec.model.layers[0].attention.inner_attention, FlexAttention.Config)
    assert default.dataloader.document_masking
    phase = load_phase(phase_file(tmp_path, mixture, extra='attention = "varlen"\ndocument_masking = false'))
    cfg = build_config(phase, device="cuda")
    assert isinstance(cfg.model_spec.model.layers[0].attention.inner_attention, VarlenAttention.Config)
    assert not cfg.dataloader.document_masking
