"""Phase files and bad input: every mistake is a UserError naming file and field, raised before
any model is built; the CLI prints it on one line and exits 2."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datakit.errors import UserError
from datakit.spec.sizes import parse_size
from datakit_titan.phase import load_phase
from datakit_titan.validate import check_phase
from titan_fixture import phase_file

PHASES = Path(__file__).parent.parent / "phases"


def test_shipped_phase_files_load_and_derive_steps_from_the_token_budget():
    pre = load_phase(PHASES / "pretrain.toml")
    assert [s.seq_len for s in pre.stage] == [1024, 2048]
    assert pre.stage_tokens() == [10 * 10**9, 40 * 10**9]
    assert pre.tokens_per_step(1) == 2 * 8 * 2048  # the plan's 2 per GPU x grad-accum 8
    assert pre.stage_steps(8) == [76_294, 152_588]
    mid = load_phase(PHASES / "midtrain.toml")
    assert mid.optimizer.lr == 1e-4 and mid.phase.init_from and mid.phase.output != pre.phase.output
    smoke = load_phase(PHASES / "smoke.toml")
    assert smoke.phase.model == "tiny" and sum(smoke.stage_steps()) == 40


def test_phase_files_train_the_plans_tokens_on_the_plans_hardware():
    mid = load_phase(PHASES / "midtrain.toml")  # tokens = "mixture": the spec's 50B until the mixture is built
    assert mid.phase.tokens == 50 * 10**9 and "mixtures/midtrain.toml" in mid.tokens_basis
    from datakit_titan.prefs.phase import load_prefs_phase

    long = load_prefs_phase(PHASES / "longctx_sft_dpo.toml")
    assert long.phase.tokens == 25 * 10**9 and long.parallel.gpu == "a100"
    assert (long.optimizer.name, long.parallel.param_dtype) == ("adamw", "float32")
    assert load_phase(PHASES / "pretrain.toml").parallel.gpu == "rtx5080"


def test_tokens_mixture_reads_the_manifest_and_the_budget_is_capped_by_it(tmp_path, mixture):
    import json

    total = json.loads((mixture / "manifest.json").read_text())["total_tokens"]
    phase = load_phase(phase_file(tmp_path, mixture, tokens='"mixture"'))
    assert phase.phase.tokens == total and "manifest.json" in phase.tokens_basis
    check_phase(phase, device="cpu")  # exactly one pass: allowed
    too_many = load_phase(phase_file(tmp_path, mixture, tokens=str(total + 1)))
    with pytest.raises(UserError, match=f"asks {total + 1:,} tokens but the mixture .* holds {total:,}") as e:
        check_phase(too_many, device="cpu")
    assert e.value.field == "phase.tokens" and "max_epochs" in e.value.fix
    twice = load_phase(phase_file(tmp_path, mixture, tokens=str(2 * total)))
    twice.phase.max_epochs = 2.0
    check_phase(twice, device="cpu")


def test_tokens_mixture_before_the_build_needs_the_spec(tmp_path):
    missing = tmp_path / "not-built"
    with pytest.raises(UserError, match="needs the built mixture") as e:
        load_phase(phase_file(tmp_path, missing, tokens='"mixture"'))
    assert e.value.field == "phase.tokens"
    spec = tmp_path / "m.toml"
    spec.write_text('[mixture]\nname = "m"\ntotal_tokens = "3M"\ntokenizer = "t.json"\noutput = "o"\n'
                    '[[source]]\nname = "a"\nuri = "hf://openai/gsm8k"\nconfig = "main"\nformat = "gsm8k"\ntokens = "1M"\n')
    path = phase_file(tmp_path, missing, tokens='"mixture"')
    path.write_text(path.read_text().replace("[[stage]]", f'[plan_claim]\ntokens = "1B"\nhours = 1\ntokens_per_s = 10\n[[stage]]')
                    .replace('tokens = "mixture"', f'tokens = "mixture"\nmixture_spec = "{spec}"'))
    phase = load_phase(path)
    assert phase.phase.tokens == 3 * 10**6 and "total_tokens of" in phase.tokens_basis
    assert phase.plan_claim.tokens == 10**9


def test_token_counts_parse():
    assert parse_size("50B") == 50 * 10**9 and parse_size("500M") == 500 * 10**6 and parse_size("12_000") == 12000
    with pytest.raises(ValueError):
        parse_size("lots")


def test_unknown_keys_and_bad_values_name_the_field(tmp_path, mixture):
    with pytest.raises(UserError) as e:
        load_phase(phase_file(tmp_path, mixture, extra="typo_key = 1"))
    assert e.value.field == "parallel.typo_key" and str(tmp_path) in str(e.value)
    with pytest.raises(UserError, match="unknown model preset"):
        load_phase(phase_file(tmp_path, mixture, model='"gpt5"'))
    with pytest.raises(UserError) as e:
        load_phase(phase_file(tmp_path, mixture, optimizer='"sgd"'))
    assert e.value.field == "optimizer.name"


def test_flash_attention_kernels_need_a_gpu(tmp_path, mixture):
    path = phase_file(tmp_path, mixture, extra='attention = "varlen"')
    phase = load_phase(path)
    with pytest.raises(UserError, match=r"parallel\.attention: attention 'varlen' needs a CUDA GPU"):
        check_phase(phase, device="cpu")
    path.write_text(path.read_text().replace('"varlen"', '"sdpa"'))
    with pytest.raises(UserError, match=r"parallel\.attention"):
        load_phase(path)


def test_missing_and_unfinished_mixture(tmp_path, mixture):
    with pytest.raises(UserError, match="does not exist") as e:
        check_phase(load_phase(phase_file(tmp_path, tmp_path / "nope")), device="cpu")
    assert e.value.field == "phase.mixture"
    unfinished = tmp_path / "unfinished"
    shutil.copytree(mixture, unfinished)
    (unfinished / "manifest.json").unlink()
    with pytest.raises(UserError, match="unfinished"):
        check_phase(load_phase(phase_file(tmp_path, unfinished)), device="cpu")


def test_corrupted_shard(tmp_path, mixture):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(mixture, corrupt)
    shard = sorted((corrupt / "tokens" / "web").glob("*.ds"))[-1]
    with open(shard, "r+b") as f:
        f.seek(4)
        f.write(b"\xff\xff")
    with pytest.raises(UserError, match="corrupted"):
        check_phase(load_phase(phase_file(tmp_path, corrupt)), device="cpu")


def test_vocab_mismatch(tmp_path, mixture):
    with pytest.raises(UserError, match="vocab 65,536 but the mixture's tokenizer has 512"):
        check_phase(load_phase(phase_file(tmp_path, mixture, model='"plan-1.6b"')), device="cpu")


def test_missing_init_from(tmp_path, mixture):
    with pytest.raises(UserError, match="does not exist") as e:
        check_phase(load_phase(phase_file(tmp_path, mixture, init_from=f'"{tmp_path / "no-pretrain"}"')), device="cpu")
    assert e.value.field == "phase.init_from"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no checkpoint"):
        check_phase(load_phase(phase_file(tmp_path, mixture, init_from=f'"{tmp_path / "empty"}"')), device="cpu")


def test_batch_that_cannot_fit_the_gpu(tmp_path, mixture):
    # the plan's model, fp32 AdamW, 64 rows of 64 tokens on a 16 GB RTX 5080: ~30 GiB by the estimate
    from datakit_titan.estimate import GPUS, check_fits

    phase = load_phase(phase_file(tmp_path, mixture, model='"plan-1.6b"', per_gpu="64", gpu='"rtx5080"'))
    with pytest.raises(UserError, match="GiB per GPU") as e:
        check_fits(phase, GPUS["rtx5080"], vocab_size=65_536)
    assert e.value.field == "batch.per_gpu"
    check_fits(phase, GPUS["h200"], vocab_size=65_536)  # fits 141 GB


def test_cli_prints_one_line_and_exits_2(tmp_path, mixture):
    bad = phase_file(tmp_path, tmp_path / "nope")
    r = subprocess.run([sys.executable, "-m", "datakit_titan.cli", "run", str(bad), "--device", "cpu"], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr and "fix:" in r.stderr


def test_seq_len_mixture_reads_the_manifest_else_the_spec(tmp_path, mixture):
    import json

    built = json.loads((mixture / "manifest.json").read_text())["seq_len"]
    path = phase_file(tmp_path, mixture)
    path.write_text(path.read_text().replace("seq_len = 64", 'seq_len = "mixture"'))
    assert [s.seq_len for s in load_phase(path).stage] == [built]
    missing = tmp_path / "not-built"
    path = phase_file(tmp_path, missing)
    path.write_text(path.read_text().replace("seq_len = 64", 'seq_len = "mixture"'))
    with pytest.raises(UserError, match='seq_len = "mixture" needs the built mixture') as e:
        load_phase(path)
    assert e.value.field == "stage.0.seq_len" and "seq_len = 2048" in e.value.fix
    spec = Path(__file__).parents[3] / "mixtures" / "smoke.toml"
    path.write_text(path.read_text().replace("[[stage]]", f'mixture_spec = "{spec}"\n[[stage]]'))
    import tomllib

    assert [s.seq_len for s in load_phase(path).stage] == [tomllib.loads(spec.read_text())["mixture"]["seq_len"]]
    path.write_text(path.read_text().replace('seq_len = "mixture"', 'seq_len = "all"'))
    with pytest.raises(UserError) as e:
        load_phase(path)
    assert e.value.field.startswith("stage.0.seq_len")
