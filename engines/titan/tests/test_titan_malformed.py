"""Hidden-case resistance (issue 16): malformed phase files, field by field (wrong type, out of range,
unknown, missing), each through the real `titan` entry point: exit 2, one line `error: <file>: <field>:
... (fix: ...)`, no traceback, nothing written, no training process started."""

from __future__ import annotations

from pathlib import Path

import pytest

from datakit_titan.phase import load_phase
from datakit_titan.prefs.phase import load_prefs_phase
from datakit_titan.validate import check_phase

BASE = """\
[phase]
name = "t"
mixture = "{mixture}"
output = "out"
model = "tiny"
tokens = 4096
seed = 7

[[stage]]
seq_len = 64

[batch]
per_gpu = 4
grad_accum = 2

[optimizer]
name = "adamw"
lr = 3e-3
weight_decay = 0.0
betas = [0.9, 0.95]
eps = 1e-8
warmup_steps = 2
decay = "cosine"
min_lr_ratio = 0.1

[checkpoint]
interval = 4
keep_last = 2

[metrics]
log_every = 1
wandb = "off"

[parallel]
activation_checkpointing = "none"
"""

PREFS = BASE.replace('seed = 7\n', 'seed = 7\nloss = "orpo"\n') + "\n[prefs]\nbeta = 0.1\n\n[rope]\nfactor = 1.0\n"

# (case id, text to replace, replacement, field named in the error; None: a file-level error)
CASES = [
    ("name-missing", 'name = "t"\n', "", "phase.name"),
    ("mixture-missing", 'mixture = "{mixture}"\n', "", "phase.mixture"),
    ("mixture-not-built", 'mixture = "{mixture}"', 'mixture = "no/such/mixture"', "phase.mixture"),
    ("output-missing", 'output = "out"\n', "", "phase.output"),
    ("model-unknown", 'model = "tiny"', 'model = "gpt5"', "phase.model"),
    ("model-type", 'model = "tiny"', "model = 3", "phase.model"),
    ("tokens-zero", "tokens = 4096", "tokens = 0", "phase.tokens"),
    ("tokens-negative", "tokens = 4096", "tokens = -4096", "phase.tokens"),
    ("tokens-type", "tokens = 4096", 'tokens = "lots"', "phase.tokens"),
    ("tokens-bool", "tokens = 4096", "tokens = true", "phase.tokens"),
    ("seed-negative", "seed = 7", "seed = -7", "phase.seed"),
    ("loss-unknown", "seed = 7", 'seed = 7\nloss = "kto"', "phase.loss"),
    ("phase-unknown", "seed = 7", "seed = 7\nepochs = 3", "phase.epochs"),
    ("stage-missing", "[[stage]]\nseq_len = 64\n", "", "stage"),
    ("seq_len-zero", "seq_len = 64", "seq_len = 0", "stage.0.seq_len"),
    ("seq_len-too-short", "seq_len = 64", "seq_len = 4", "stage.0.seq_len"),
    ("seq_len-beyond-model", "seq_len = 64", "seq_len = 4096", "stage.0.seq_len"),
    ("seq_len-type", "seq_len = 64", 'seq_len = "long"', "stage.0.seq_len"),
    ("seq_len-numeric-string", "seq_len = 64", 'seq_len = "64"', "stage.0.seq_len"),
    ("stage-tokens-zero", "seq_len = 64", "seq_len = 64\ntokens = 0", "stage.0.tokens"),
    ("stage-tokens-over-budget", "seq_len = 64", "seq_len = 64\ntokens = 5000\n[[stage]]\nseq_len = 64", "stage.tokens"),
    ("stage-unknown", "seq_len = 64", "seq_len = 64\nrope = 1", "stage.0.rope"),
    ("per_gpu-zero", "per_gpu = 4", "per_gpu = 0", "batch.per_gpu"),
    ("per_gpu-float", "per_gpu = 4", "per_gpu = 1.5", "batch.per_gpu"),
    ("grad_accum-negative", "grad_accum = 2", "grad_accum = -1", "batch.grad_accum"),
    ("batch-unknown", "grad_accum = 2", "grad_accum = 2\nglobal = 64", "batch.global"),
    ("lr-zero", "lr = 3e-3", "lr = 0.0", "optimizer.lr"),
    ("lr-huge", "lr = 3e-3", "lr = 5.0", "optimizer.lr"),
    ("lr-nan", "lr = 3e-3", "lr = nan", "optimizer.lr"),
    ("lr-type", "lr = 3e-3", 'lr = "fast"', "optimizer.lr"),
    ("optimizer-name", 'name = "adamw"', 'name = "sgd"', "optimizer.name"),
    ("weight_decay-negative", "weight_decay = 0.0", "weight_decay = -0.1", "optimizer.weight_decay"),
    ("betas-range", "betas = [0.9, 0.95]", "betas = [0.9, 1.5]", "optimizer.betas"),
    ("betas-length", "betas = [0.9, 0.95]", "betas = [0.9]", "optimizer.betas.1"),
    ("eps-zero", "eps = 1e-8", "eps = 0.0", "optimizer.eps"),
    ("warmup-negative", "warmup_steps = 2", "warmup_steps = -1", "optimizer.warmup_steps"),
    ("warmup-beyond-steps", "warmup_steps = 2", "warmup_steps = 100", "optimizer.warmup_steps"),
    ("decay-unknown", 'decay = "cosine"', 'decay = "step"', "optimizer.decay"),
    ("min_lr_ratio-range", "min_lr_ratio = 0.1", "min_lr_ratio = 2.0", "optimizer.min_lr_ratio"),
    ("optimizer-unknown", "min_lr_ratio = 0.1", "min_lr_ratio = 0.1\nmomentum = 0.9", "optimizer.momentum"),
    ("interval-zero", "interval = 4", "interval = 0", "checkpoint.interval"),
    ("keep_last-one", "keep_last = 2", "keep_last = 1", "checkpoint.keep_last"),
    ("keep_last-negative", "keep_last = 2", "keep_last = -2", "checkpoint.keep_last"),
    ("log_every-zero", "log_every = 1", "log_every = 0", "metrics.log_every"),
    ("wandb-unknown", 'wandb = "off"', 'wandb = "yes"', "metrics.wandb"),
    ("activation_checkpointing", 'activation_checkpointing = "none"', 'activation_checkpointing = "some"', "parallel.activation_checkpointing"),
    ("section-unknown", "[metrics]", "[metric]", "metric"),
    ("toml-syntax", "lr = 3e-3", "lr = = 3e-3", None),
]

PREFS_CASES = [
    ("prefs-beta-zero", "beta = 0.1", "beta = 0.0", "prefs.beta"),
    ("prefs-unknown", "beta = 0.1", "beta = 0.1\ngamma = 1", "prefs.gamma"),
    ("rope-factor", "factor = 1.0", "factor = 0.5", "rope.factor"),
    ("rope-scaling-without-length", "factor = 1.0", 'factor = 4.0\nscaling = "yarn"', "rope.original_seq_len"),
    ("dpo-without-init_from", 'loss = "orpo"', 'loss = "dpo"', "phase.init_from"),
    ("prefs-two-stages", "[batch]", "[[stage]]\nseq_len = 64\n\n[batch]", "stage"),
]



def test_the_base_phase_files_are_valid(tmp_path, mixture):
    p = tmp_path / "p.toml"
    p.write_text(BASE.format(mixture=mixture))
    check_phase(load_phase(p), device="cpu")
    p.write_text(PREFS.format(mixture=mixture))
    load_prefs_phase(p)
    assert len(CASES) + len(PREFS_CASES) >= 40


@pytest.mark.parametrize("case, old, new, field", [*CASES, *((f"prefs/{c[0]}", *c[1:]) for c in PREFS_CASES)],
                         ids=[c[0] for c in CASES] + [f"prefs/{c[0]}" for c in PREFS_CASES])
def test_a_malformed_phase_file_is_one_clean_error_and_writes_nothing(cli, tmp_path, monkeypatch, capsys, mixture, case, old, new, field):
    base = PREFS if case.startswith("prefs/") else BASE
    assert old in base, case
    phase = tmp_path / "p.toml"
    phase.write_text(base.replace(old, new, 1).format(mixture=mixture))
    monkeypatch.chdir(tmp_path)  # the relative output folder would land here
    before = sorted(p.relative_to(mixture) for p in mixture.rglob("*"))
    code, out, err = cli.titan("run", str(phase), "--device", "cpu")
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    prefix = f"error: {phase}: " + (f"{field}: " if field else "")
    assert lines[0].startswith(prefix), (prefix, lines[0])
    assert "(fix: " in lines[0] and lines[0].endswith(")"), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.toml"]
    assert sorted(p.relative_to(mixture) for p in mixture.rglob("*")) == before
