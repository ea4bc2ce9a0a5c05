"""Contract 2 from `datakit mix build`: shards, sha256, accounting that agrees with the manifest,
same bytes whatever the worker count, and the same bytes after a kill and a rerun."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from datakit.errors import UserError
from datakit.mix.build import build_mixture, plan_mixture
from datakit.contract import load_manifest, read_shard, sha256_file, verify_mixture
from datakit.mix.pipeline import ExecutorOptions
from datakit.spec import load_spec

from smoke_helpers import run_cli, smoke_spec_text


def shard_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted((folder / "tokens").rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory, smoke_tokenizer):
    d = tmp_path_factory.mktemp("built")
    p = d / "smoke.toml"
    p.write_text(smoke_spec_text(d / "mix", smoke_tokenizer))
    spec = load_spec(p)
    manifest = build_mixture(spec, ExecutorOptions(workers=2), progress=False)
    return spec, manifest


def test_manifest_and_shards(built):
    spec, m = built
    assert load_manifest(spec.output).spec_sha256 == spec.sha256
    verify_mixture(spec.output, manifest=m).raise_if_bad()  # sizes and sha256 match the files
    assert {s.name for s in m.sources} == {s.name for s in spec.source}
    assert abs(sum(s.weight for s in m.sources) - 1) < 1e-9
    assert m.tokenizer.vocab_size == 4096 and m.tokenizer.sha256 == sha256_file(spec.mixture.tokenizer)
    for s in m.sources:
        assert s.tokens_written > 0 and s.shards
        for sh in s.shards:
            tokens, ends, _ = read_shard(spec.output / sh.path)
            assert len(tokens) == sh.n_tokens == ends[-1] and len(ends) == sh.n_docs
            starts = np.concatenate([[0], ends[:-1]]).astype(int)
            assert (tokens[starts] == 1).all() and (tokens[ends.astype(int) - 1] == 2).all()  # <s> ... </s>
            assert tokens.max() < 4096


def test_accounting_agrees_with_manifest(built):
    spec, m = built
    con = duckdb.connect(str(spec.output / "accounting.duckdb"), read_only=True)
    per_source = dict(con.execute("select source, sum(tokens) from docs group by 1").fetchall())
    per_shard = {(a, b): c for a, b, c in con.execute("select source, shard, sum(tokens) from docs group by 1, 2").fetchall()}
    assert per_source == {s.name: s.tokens_written for s in m.sources}
    assert sum(per_source.values()) == m.total_tokens
    for s in m.sources:
        for sh in s.shards:
            assert per_shard[(s.name, Path(sh.path).name)] == sh.n_tokens
    assert con.execute("select count(*) from docs").fetchone()[0] == m.total_docs


def test_all_means_one_epoch_and_weight_means_repetition(built):
    spec, m = built
    fw = m.source("fineweb-edu")
    assert fw.tokens_written == fw.tokens_available and fw.epochs == 1.0
    g = m.source("planning")
    assert g.tokens_written >= g.tokens_target > g.tokens_available  # the spec asks > 1 epoch
    con = duckdb.connect(str(spec.output / "accounting.duckdb"), read_only=True)
    epochs = [r[0] for r in con.execute("select distinct epoch from docs where source = 'planning' order by 1").fetchall()]
    assert epochs[0] == 0 and len(epochs) == int(np.ceil(g.epochs))


def test_report_written(built):
    spec, m = built
    text = (spec.output / "report.md").read_text()
    assert "| fineweb-edu |" in text and "epochs" in text
    assert (spec.output / "report.png").stat().st_size > 1000


def test_tokens_query_cli(built):
    spec, m = built
    r = run_cli("tokens", "query", spec.output, "select source, sum(tokens) as n from docs group by 1 order by 1")
    assert r.returncode == 0, r.stderr
    assert "gsm8k" in r.stdout and f"{m.source('gsm8k').tokens_written:,}" in r.stdout
    bad = run_cli("tokens", "query", spec.output, "select nope from docs")
    assert bad.returncode == 2 and "tables:" in bad.stderr


def test_rebuild_is_a_noop_and_other_spec_is_refused(built, tmp_path):
    spec, m = built
    assert build_mixture(spec, progress=False).created == m.created
    other = tmp_path / "other.toml"
    other.write_text(Path(spec.path).read_text().replace("seed = 1234", "seed = 99"))
    with pytest.raises(UserError, match="different spec"):
        build_mixture(load_spec(other), progress=False)


@pytest.mark.slow
def test_same_bytes_whatever_workers(built, tmp_path):
    spec, _ = built
    p = tmp_path / "smoke.toml"
    p.write_text(Path(spec.path).read_text().replace(str(spec.output), str(tmp_path / "mix1")))
    build_mixture(load_spec(p), ExecutorOptions(workers=1), progress=False)
    assert shard_hashes(tmp_path / "mix1") == shard_hashes(spec.output)


@pytest.mark.slow
def test_kill_and_resume_gives_identical_bytes(built, tmp_path):
    spec, _ = built
    p = tmp_path / "smoke.toml"
    out = tmp_path / "mixk"
    p.write_text(Path(spec.path).read_text().replace(str(spec.output), str(out)))
    cmd = [sys.executable, "-m", "datakit.cli.main", "mix", "build", str(p), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # kill it once some (not all) datatrove tasks have completed
    deadline = time.time() + 300
    while time.time() < deadline:
        done = list((out / ".work" / "logs").rglob("completions/*")) if (out / ".work" / "logs").exists() else []
        if len(done) >= 3 or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert shard_hashes(out) == shard_hashes(spec.output)


def test_plan_refuses_past_max_epochs(smoke_spec):
    p = smoke_spec
    p.write_text(p.read_text().replace('tokens = "12K"', 'tokens = "10B"'))
    spec = load_spec(p)
    plan = plan_mixture(spec, progress=False)
    g = next(s for s in plan.sources if s.name == "planning")
    assert g.status == "refused" and g.epochs > 1000
    assert "max_epochs 3" in g.message and "tokens <=" in g.message
    r = run_cli("mix", "plan", p)
    assert r.returncode == 2 and "planning" in r.stdout and "refused" in r.stdout
    assert "infeasible" in r.stderr
    j = run_cli("mix", "plan", p, "--json")
    assert json.loads(j.stdout)["refused"] == ["planning"]


def test_plan_and_build_refuse_hub_source_before_download(tmp_path, smoke_tokenizer):
    p = tmp_path / "mid.toml"
    out = tmp_path / "o"
    p.write_text(
        f'[mixture]\nname = "m"\ntokenizer = "{smoke_tokenizer}"\nvocab_size = 4096\noutput = "{out}"\n'
        '[[source]]\nname = "gsm8k"\nuri = "hf://openai/gsm8k"\nconfig = "main"\nformat = "gsm8k"\ntokens = "10B"\n'
    )
    plan = plan_mixture(load_spec(p), progress=False)
    (g,) = plan.sources
    assert g.status == "refused" and g.basis.startswith("estimate") and g.epochs > 1000
    with pytest.raises(UserError, match="infeasible"):  # no network here: it must refuse before reaching the hub
        build_mixture(load_spec(p), progress=False)


@pytest.mark.parametrize(
    "edit,match",
    [
        (('uri = "samples://openai__gsm8k/main/train-*.parquet"', 'uri = "samples://openai__gsm8k/main/nothing-*.parquet"'), "no readable files"),
        (('format = "gsm8k"', 'format = "gsm9k"'), "gsm9k"),
        (('format = "arc"', 'format = "gsm8k"'), "question|answer|column"),
        (('hydrate = { url = "samples://softwareheritage/content/{blob_id}" }   # real runs: the default s3://softwareheritage/...', ""), "blob ids"),
        (("vocab_size = 4096", "vocab_size = 8192"), "vocab_size"),
    ],
)
def test_bad_input_is_refused_before_processing(smoke_spec, edit, match):
    text = smoke_spec.read_text()
    assert edit[0] in text
    smoke_spec.write_text(text.replace(edit[0], edit[1], 1))
    spec = load_spec(smoke_spec)
    with pytest.raises(UserError, match=match) as e:
        build_mixture(spec, progress=False)
    assert "fix:" in str(e.value)
    assert not (spec.output / "manifest.json").exists()


def test_changing_a_target_reuses_stages_and_changing_a_source_redoes_it(smoke_spec):
    spec = load_spec(smoke_spec)
    plan_mixture(spec, progress=False)  # prepares and tokenizes every local source
    work = spec.output / ".work"
    gsm = work / "tokenized" / "planning"
    before = {p.name: p.stat().st_mtime_ns for p in gsm.iterdir()}
    smoke_spec.write_text(smoke_spec.read_text().replace('tokens = "12K"', 'tokens = "10K"'))
    plan = plan_mixture(load_spec(smoke_spec), progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in gsm.iterdir()} == before  # target change: nothing redone
    assert next(s for s in plan.sources if s.name == "planning").tokens_target == 10_000
    arc_before = (work / "prepared" / "arc").stat().st_mtime_ns
    planning_prepared = {p.name: p.stat().st_mtime_ns for p in (work / "prepared" / "planning").iterdir()}
    smoke_spec.write_text(smoke_spec.read_text().replace('format = "arc"', 'format = "text"', 1).replace(
        'uri = "samples://allenai__ai2_arc/ARC-Challenge/train-*.parquet"', 'uri = "samples://HuggingFaceTB__finemath/finemath-4plus/train-*.parquet"'))
    plan_mixture(load_spec(smoke_spec), progress=False)
    assert (work / "prepared" / "arc").stat().st_mtime_ns != arc_before  # source changed: redone
    # other sources keep their prepare stage; [curate] is mixture-wide, so curation and tokenization rerun
    assert {p.name: p.stat().st_mtime_ns for p in (work / "prepared" / "planning").iterdir()} == planning_prepared


@pytest.mark.slow
def test_one_pass_and_two_stage_builds_write_the_same_bytes(tmp_path, smoke_tokenizer):
    """Without [curate] the build reads and tokenizes in one pass; after a plan made before the tokenizer
    existed it tokenizes the prepared documents instead. Both must give the same shards."""
    import re

    def spec_at(name: str, tokenizer: Path) -> Path:
        text = smoke_spec_text(tmp_path / name, tokenizer)
        text = re.sub(r"\n\[curate\].*?\n\n\[\[source\]\]", "\n\n[[source]]", text, flags=re.S)
        p = tmp_path / f"{name}.toml"
        p.write_text(text)
        return p

    one = load_spec(spec_at("one", smoke_tokenizer))
    assert one.curate is None
    build_mixture(one, progress=False)
    late_tok = tmp_path / "late" / "tokenizer.json"
    two = load_spec(spec_at("two", late_tok))
    assert plan_mixture(two, progress=False).sources[0].basis.startswith("chars/4")  # prepared, no tokenizer yet
    late_tok.parent.mkdir()
    late_tok.write_bytes(smoke_tokenizer.read_bytes())
    build_mixture(two, progress=False)
    assert (tmp_path / "two" / ".work" / "prepared" / "gsm8k").exists()
    assert shard_hashes(tmp_path / "one") == shard_hashes(tmp_path / "two")
