"""`titan eval` / `titan eval-report` on a small transformers model: held-out loss, lm-eval benchmarks on
local task data, planning and long-context probes, each checked against a hand computation; bad inputs."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from eval_fixture import make_hf_model

from datakit.errors import UserError
from datakit_titan.eval.model import open_model
from datakit_titan.eval.run import EvalOptions, evaluate_model


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return make_hf_model(tmp_path_factory.mktemp("eval"))


@pytest.fixture(scope="module")
def model(fx):
    return open_model(fx["hf"], mixture=fx["mixture"], device="cpu")


def test_heldout_loss_is_the_models_own_loss(fx, model):
    import torch

    from datakit_titan.eval.loss import heldout_docs, heldout_loss

    r = heldout_loss(model, fx["heldout"])
    docs, _ = heldout_docs(fx["heldout"])
    assert set(r["sources"]) == {"web", "code", "planning"} and r["sources"]["web"]["docs"] == 6
    # by hand: transformers' own mean cross-entropy per document, token-weighted over the source
    tot, n = 0.0, 0
    for d in docs["web"]:
        ids = torch.from_numpy(np.asarray(d[: model.context])).unsqueeze(0)
        with torch.no_grad():
            loss = float(model.model(input_ids=ids, labels=ids).loss)
        tot += loss * (ids.shape[1] - 1)
        n += ids.shape[1] - 1
    assert r["sources"]["web"]["tokens"] == n
    assert abs(r["sources"]["web"]["loss"] - tot / n) < 1e-4
    assert abs(r["sources"]["web"]["ppl"] - math.exp(tot / n)) < 1e-2
    lo, hi = r["all"]["ci95"]
    assert lo < r["all"]["loss"] < hi
    assert r["heldout_sha256"]


def test_arc_accuracy_equals_a_hand_computation(model):
    """lm-eval's acc on 6 local ARC-Easy items = argmax of our own log-likelihoods of ' <choice>'."""
    from datakit_titan.eval.harness import run_tasks

    r = run_tasks(model, ["arc_easy"], limit=6, batch_size=4, log_samples=True)["tasks"]["arc_easy"]
    assert r["n"] == 6 and r["num_fewshot"] == 0
    hits, hits_norm = 0, 0
    for s in r["samples"]:
        doc = s["doc"]
        ctx = f"Question: {doc['question']}\nAnswer:"
        n_ctx = len(model.encode(ctx))
        ll = []
        for choice in doc["choices"]["text"]:
            ids = np.array(model.encode(ctx + " " + choice))
            ll.append(-float(model.token_nll([ids])[0][n_ctx - 1:].sum()))
        gold = doc["choices"]["label"].index(doc["answerKey"])
        hits += int(np.argmax(ll)) == gold
        hits_norm += int(np.argmax([x / len(" " + c) for x, c in zip(ll, doc["choices"]["text"])])) == gold
    assert r["metrics"]["acc,none"]["value"] == pytest.approx(hits / 6)
    assert r["metrics"]["acc_norm,none"]["value"] == pytest.approx(hits_norm / 6)
    assert r["metrics"]["acc,none"]["n"] == 6 and r["chance"] == 0.25


@pytest.mark.slow
def test_gsm8k_five_shot_and_hellaswag_run_offline(model):
    from datakit_titan.eval.harness import run_tasks

    r = run_tasks(model, ["gsm8k", "hellaswag"], limit=2, batch_size=2)
    g = r["tasks"]["gsm8k"]
    assert g["num_fewshot"] == 5 and g["n"] == 2
    assert 0.0 <= g["metrics"]["exact_match,strict-match"]["value"] <= 1.0
    assert r["tasks"]["hellaswag"]["n"] == 2 and r["samples_embedded"]


def test_missing_task_data_names_the_fix(model, tmp_path):
    from datakit_titan.eval.harness import run_tasks

    with pytest.raises(UserError, match="no local data for task arc_easy") as e:
        run_tasks(model, ["arc_easy"], root=tmp_path)
    assert "--tasks-data" in e.value.render()


def test_export_and_mixture_with_another_tokenizer_are_refused(fx, tmp_path):
    import shutil

    from export_fixture import train_tok, write_text_mixture

    other = train_tok({"x": [f"text number {i} about other things" for i in range(200)]}, tmp_path / "tok" / "tokenizer.json")
    mix = write_text_mixture(tmp_path / "mix", {"x": ["hello world"] * 20}, other, "other")
    with pytest.raises(UserError, match="not the tokenizer the mixture was built with"):
        open_model(fx["hf"], mixture=mix, device="cpu")
    shutil.rmtree(tmp_path / "mix")


def test_unknown_suite_and_too_long_probe(model):
    from datakit_titan.eval.run import parse_suites

    with pytest.raises(UserError, match="unknown eval suite 'planing'"):
        parse_suites("core,planing")
    with pytest.raises(UserError, match="trained at 1,024") as e:
        evaluate_model(model, EvalOptions(suites=["longctx"], longctx_lengths=(2048, 4096, 8192), wandb="off"))
    assert "phase-3" in e.value.render()


def test_longctx_buckets_and_passkey(fx, model):
    from datakit.eval.longctx import passkey_correct, passkey_prompts
    from datakit_titan.eval.loss import position_loss

    probes = passkey_prompts(model.count_tokens, (256, 512), per_length=3, answer_tokens=8)
    assert all(p.length - 48 <= model.count_tokens(p.prompt) <= p.length - 8 for p in probes)
    assert all(p.key in p.prompt for p in probes) and passkey_correct("12345", " 12345.") and not passkey_correct("12345", " 1234")
    r = position_loss(model, fx["heldout"], buckets=[(0, 128), (128, 256), (256, 1024)])
    b = r["buckets"]
    assert sum(v["tokens"] for v in b.values()) == sum(min(len(d), model.context) - 1 for d in _docs(fx))
    assert b["0-128"]["tokens"] > 0 and all(v["loss"] is None or v["loss"] > 0 for v in b.values())


def _docs(fx):
    from datakit_titan.eval.loss import heldout_docs

    docs, _ = heldout_docs(fx["heldout"])
    return [d for ds in docs.values() for d in ds if len(d) > 1]


@pytest.mark.slow
def test_titan_eval_and_eval_report_commands(fx, tmp_path, monkeypatch, capsys):
    from datakit_titan.cli import main

    def titan(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["titan", *args])
        try:
            main()
        except SystemExit as e:
            return int(e.code or 0)
        return 0

    out = tmp_path / "outputs" / "tiny" / "eval" / "export.json"
    args = ["eval", str(fx["hf"]), "--mixture", str(fx["mixture"]), "--suite", "core,planning,longctx", "--tasks", "arc_challenge",
            "--limit", "4", "--per-cell", "1", "--difficulties", "easy", "--samples", "2", "--max-new-tokens", "24",
            "--longctx-lengths", "256,512", "--out", str(out), "--wandb", "off", "--device", "cpu"]
    assert titan(*args) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["model"]["tokenizer_sha256"] and res["model"]["model_sha256"] and res["heldout"]["heldout_sha256"]
    assert res["benchmarks"]["tasks"]["arc_challenge"]["n"] == 4
    p = res["planning"]
    assert p["n_problems"] + p["skipped_prompt_too_long"] == 5 and p["disjoint"]["overlap"] == 0 and p["items_per_s"] > 0
    assert set(res["longctx"]["passkey"]) == {"256", "512"}
    assert "held-out loss, all" in printed and "arc_challenge" in printed
    assert (out.parent / "tb").is_dir()
    assert titan("eval-report", str(tmp_path / "outputs")) == 0
    md = (tmp_path / "outputs" / "eval_report.md").read_text()
    assert "| metric |" in md and "planning valid-plan %" in md and "~chance" in md and "published anchors" in md
    assert (tmp_path / "outputs" / "eval_report.png").stat().st_size > 1000
    capsys.readouterr()
    assert titan(*args[:2], "--suite", "speed") == 2
    err = capsys.readouterr().err
    assert "error:" in err and "unknown eval suite 'speed'" in err and "Traceback" not in err


def test_phase_file_names_an_eval_suite(tmp_path):
    from pathlib import Path

    from datakit_titan.phase import load_phase

    root = Path(__file__).resolve().parents[3]
    smoke = (root / "engines" / "titan" / "phases" / "smoke.toml").read_text()
    smoke = smoke.replace('"mixtures/smoke.toml"', f'"{root / "mixtures" / "smoke.toml"}"')  # seq_len = "mixture" from any cwd
    (tmp_path / "ok.toml").write_text(smoke + '\n[eval]\nsuite = "core,planning"\nlimit = 10\n')
    p = load_phase(tmp_path / "ok.toml")
    assert p.eval.suite == "core,planning" and p.eval.limit == 10
    (tmp_path / "bad.toml").write_text(smoke + '\n[eval]\nsuite = "core,speed"\n')
    with pytest.raises(UserError, match="unknown eval suite 'speed'") as e:
        load_phase(tmp_path / "bad.toml")
    assert "eval.suite" in e.value.render()


@pytest.mark.slow
def test_eval_of_a_trained_run_writes_step_json_with_hashes(tmp_path):
    """The user's story on a real `titan run` (tiny preset, a few CPU steps): the newest checkpoint is
    exported once to <run>/eval/hf-step-N, evaluated, and <run>/eval/<step>.json names its hashes."""
    from export_fixture import make_trained

    from datakit_titan.eval.run import result_path, write_result

    tr = make_trained(tmp_path, steps=6, model="tiny")
    m = open_model(tr["output"], device="cpu")
    assert m.step == 6 and m.context == 256 and (tr["output"] / "eval" / "hf-step-6" / "checkpoint.sha256").is_file()
    res = evaluate_model(m, EvalOptions(suites=["core", "planning"], tasks=[], heldout=tr["heldout"], planning_per_cell=1,
                                        difficulties=("easy",), samples=1, max_new_tokens=16, wandb="off"))
    path = write_result(res, result_path(m, None))
    assert path == tr["output"] / "eval" / "6.json"
    got = json.loads(path.read_text())
    assert got["model"]["checkpoint_sha256"] and got["model"]["tokenizer_sha256"] == m.hashes["tokenizer_sha256"]
    assert got["phase"] == "pretrain" and set(got["heldout"]["sources"]) == {"web", "code", "planning"}
    assert got["planning"]["disjoint"]["overlap"] == 0
    stamp = (tr["output"] / "eval" / "hf-step-6" / "model.safetensors").stat().st_mtime_ns
    assert open_model(tr["output"], device="cpu").step == 6
    assert (tr["output"] / "eval" / "hf-step-6" / "model.safetensors").stat().st_mtime_ns == stamp  # exported once
