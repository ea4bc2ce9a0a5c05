"""Phase-3 phase files: the loss and RoPE sections, their mistakes, and the RoPE change surviving a
checkpoint load (TorchTitan's RoPE cache is not persistent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datakit.errors import UserError
from datakit_titan.prefs.phase import is_prefs_phase, load_prefs_phase

BASE = """
[phase]
name = "p3"
mixture = "mix"
output = "out"
model = "tiny"
tokens = 4096
init_from = "outputs/midtrain"
{phase_extra}

[[stage]]
seq_len = 128

[batch]
per_gpu = 2
grad_accum = 1

[optimizer]
warmup_steps = 1
{extra}
"""


def write(tmp_path: Path, phase_extra: str = 'loss = "sft_dpo"', extra: str = "") -> Path:
    p = tmp_path / "p3.toml"
    p.write_text(BASE.format(phase_extra=phase_extra, extra=extra))
    return p


def test_defaults_are_the_plan_and_activation_checkpointing_is_on(tmp_path):
    p = load_prefs_phase(write(tmp_path))
    assert (p.phase.loss, p.prefs.beta, p.prefs.w_sft, p.prefs.w_dpo, p.prefs.orpo_lambda) == ("sft_dpo", 0.1, 1.0, 0.5, 0.1)
    assert p.parallel.activation_checkpointing == "full"
    assert p.rope.settings(p.preset())["theta"] == 10_000.0  # no [rope]: phase 2's theta
    assert is_prefs_phase(write(tmp_path)) and not is_prefs_phase(write(tmp_path, phase_extra=""))


@pytest.mark.parametrize(
    "phase_extra, extra, field",
    [
        ('loss = "kto"', "", "phase.loss"),
        ('loss = "dpo"\ninit_from = ""', "", None),  # duplicate key: invalid TOML
        ('loss = "sft_dpo"', "[rope]\nscaling = \"yarn\"\nfactor = 4.0", "rope.original_seq_len"),
        ('loss = "sft_dpo"', "[prefs]\nbeta = 0", "prefs.beta"),
        ('loss = "sft_dpo"', "[prefs]\ngamma = 1", "prefs.gamma"),
    ],
)
def test_mistakes_name_the_field(tmp_path, phase_extra, extra, field):
    with pytest.raises(UserError) as e:
        load_prefs_phase(write(tmp_path, phase_extra, extra))
    assert e.value.file and (field is None or e.value.field == field), str(e.value)


def test_dpo_needs_init_from(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text(BASE.format(phase_extra='loss = "dpo"', extra="").replace('init_from = "outputs/midtrain"', ""))
    with pytest.raises(UserError, match="reference model") as e:
        load_prefs_phase(p)
    assert e.value.field == "phase.init_from"
    p.write_text(BASE.format(phase_extra='loss = "orpo"', extra="").replace('init_from = "outputs/midtrain"', ""))
    assert load_prefs_phase(p).phase.loss == "orpo"  # reference-free


def test_new_rope_applies_after_loading_phase2_weights(tmp_path):
    """Weights saved by a theta-10k model load into the phase-3 model; its RoPE cache is the phase's
    (theta 500k, YaRN x4), because the cache is rebuilt from the config and never read from a checkpoint."""
    from datakit_titan import cpu
    from datakit_titan.prefs.config_registry import prefs_model_spec
    from datakit_titan.presets import PRESETS
    from datakit_titan.spec import model_config

    cpu.enable()

    def build(cfg):
        with torch.device("meta"):
            m = cfg.build()
        m.to_empty(device="cpu")
        with torch.no_grad():
            m.init_weights(buffer_device=None)
        return m

    torch.manual_seed(0)
    phase2 = build(model_config(PRESETS["tiny"], 64))
    state = phase2.state_dict()
    assert not any("rope" in k for k in state)  # not persistent
    p = load_prefs_phase(write(tmp_path, extra="[rope]\ntheta = 500_000.0\nscaling = \"yarn\"\nfactor = 4.0\noriginal_seq_len = 2048"))
    spec = prefs_model_spec(p, 64)
    assert all(layer.attention.rope.theta == 500_000.0 and layer.attention.rope.scaling == "yarn" and layer.attention.rope.rope_factor == 4.0
               for layer in spec.model.layers)
    phase3 = build(spec.model)
    phase3.load_state_dict(state)
    fresh = spec.model.layers[0].attention.rope.build()
    cache3, cache2 = phase3.layers["0"].attention.rope.cache, phase2.layers["0"].attention.rope.cache
    torch.testing.assert_close(cache3, fresh.cache)
    assert not torch.allclose(cache3[: cache2.shape[0]], cache2)
    assert torch.equal(phase3.layers["0"].attention.qkv_linear.wqkv.weight, phase2.layers["0"].attention.qkv_linear.wqkv.weight)


def test_shipped_phase_files_load():
    phases = Path(__file__).resolve().parents[1] / "phases"
    long = load_prefs_phase(phases / "longctx_sft_dpo.toml")
    assert (long.phase.loss, long.stage[0].seq_len, long.parallel.activation_checkpointing) == ("sft_dpo", 8192, "full")
    assert (long.prefs.w_sft, long.prefs.w_dpo, long.prefs.beta, long.rope.theta) == (1.0, 0.5, 0.1, 130_000.0)
    smoke = load_prefs_phase(phases / "smoke_sft_dpo.toml")
    assert smoke.phase.model == "tiny" and smoke.phase.init_from == "outputs/smoke"
