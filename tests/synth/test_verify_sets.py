"""`datakit synth verify` and the dpo/sft/verify CLI commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from datakit.errors import UserError
from datakit.synth.dpo import make_dpo
from datakit.synth.procedural import generate
from datakit.synth.sft import make_sft
from datakit.synth.verify import verify_folder


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    generate(root / "plan", 20, seed=9, progress=False)
    make_dpo(root / "plan", root / "dpo", pairs_per_record=2, progress=False)
    make_sft(root / "plan", root / "sft", progress=False)
    return root


def test_verify_passes_generated_sets_by_domain_and_flaw(sets):
    for name, kind in (("plan", "planning"), ("dpo", "dpo"), ("sft", "sft")):
        report = verify_folder(sets / name)
        assert report.ok and report.total("pass") >= 20 and report.total("unchecked") == 0, report.format()
        assert {k for k, _, _ in report.counts} == {kind}
    dpo = verify_folder(sets / "dpo")
    assert len({f for _, _, f in dpo.counts}) >= 5  # grouped by flaw type
    assert "software_architecture" in dpo.format()


def test_verify_catches_tampered_records(sets, tmp_path):
    pairs = [json.loads(line) for line in (sets / "dpo/records/dpo-procedural-s0.jsonl").read_text().splitlines()]
    pairs[0]["rejected"] = pairs[0]["chosen"]           # not a flaw at all
    pairs[1]["rejected"] = pairs[1]["chosen"] + " "     # same up to whitespace
    pairs[2]["chosen"], pairs[2]["rejected"] = pairs[2]["rejected"], pairs[2]["chosen"]  # swapped labels
    pairs[3]["meta"]["instance"] = {"nonsense": 1}      # instance does not parse
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    report = verify_folder(tmp_path / "t.jsonl")
    assert not report.ok and report.total("fail") == 4
    assert report.total("pass") == len(pairs) - 4
    text = report.format()
    assert "rejected equals chosen" in text and "chosen fails" in text and "does not parse" in text


def test_verify_counts_records_without_instance_as_unchecked(tmp_path):
    rec = {"id": "x", "prompt": "<problem>p</problem>", "chosen": "<thinking>a</thinking><answer>b</answer>",
           "rejected": "<thinking>a</thinking><answer>c</answer>", "meta": {"flaw": "wrong_final_answer", "domain": "logistics"}}
    (tmp_path / "a.jsonl").write_text(json.dumps(rec) + "\n")
    report = verify_folder(tmp_path / "a.jsonl")
    assert report.ok and report.total("unchecked") == 1
    with pytest.raises(UserError, match="not found"):
        verify_folder(tmp_path / "nope")


def test_cli_dpo_sft_verify(sets, tmp_path):
    from datakit.cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["synth", "dpo", "--from", str(sets / "plan"), "--out", str(tmp_path / "dpo"), "--quiet",
                            "--flaw", "wrong_final_answer,skipped_step"])
    assert r.exit_code == 0, r.output
    assert "wrote 20 pairs" in r.output
    r = runner.invoke(app, ["synth", "sft", "--from", str(sets / "plan"), "--out", str(tmp_path / "sft"), "--quiet"])
    assert r.exit_code == 0 and "wrote 20 SFT records" in r.output, r.output
    r = runner.invoke(app, ["synth", "verify", str(tmp_path / "dpo")])
    assert r.exit_code == 0 and "total: 20 pass, 0 fail" in r.output, r.output
    bad = tmp_path / "bad.jsonl"
    pair = json.loads((tmp_path / "dpo/records/dpo-procedural-s0.jsonl").read_text().splitlines()[0])
    pair["rejected"] = pair["chosen"]
    bad.write_text(json.dumps(pair) + "\n")
    r = runner.invoke(app, ["synth", "verify", str(bad)])
    assert r.exit_code == 1 and "1 fail" in r.output
    r = runner.invoke(app, ["synth", "dpo", "--help"])
    assert "Example" in r.output and "--pairs-per-record" in r.output


def test_cli_user_errors_exit_2_without_traceback(tmp_path):
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-c", "from datakit.cli.main import main; main()"]
    r = subprocess.run(cmd + ["synth", "planning", "--provider", "procedural", "--count", "5", "--out", str(tmp_path / "p"),
                              "--difficulty", "hard,size=999"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: difficulty: impossible setting size=999"), r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "p").exists()
    r = subprocess.run(cmd + ["synth", "dpo", "--from", str(tmp_path / "none"), "--out", str(tmp_path / "d")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "folder not found" in r.stderr and "Traceback" not in r.stderr


def test_cli_planning_procedural_then_verify(tmp_path):
    from datakit.cli.main import app

    runner = CliRunner()
    out = tmp_path / "procedural"
    r = runner.invoke(app, ["synth", "planning", "--provider", "procedural", "--count", "10", "--out", str(out), "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert len((out / "records" / "procedural-s3.jsonl").read_text().splitlines()) == 10
    r = runner.invoke(app, ["synth", "verify", str(out)])
    assert r.exit_code == 0 and "total: 10 pass, 0 fail" in r.output, r.output
