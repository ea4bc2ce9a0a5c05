"""The embedded samples carry the exact upstream schemas and the quirks the pipeline must handle."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datakit.errors import UserError
from datakit.samples import BLOB_STORE_DIR, SAMPLES, SAMPLES_DIR, sample_path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _table(name: str, split: str = "train") -> pa.Table:
    files = SAMPLES[name].files(split)
    assert files, f"{name}/{split} has no files"
    return pa.concat_tables(pq.read_table(f) for f in files)


def _types(schema: pa.Schema) -> dict[str, str]:
    return {f.name: str(f.type) for f in schema}


def test_every_sample_has_files_and_a_readme():
    for s in SAMPLES.values():
        for split in s.splits:
            assert s.files(split), (s.name, split)
        org_folder = SAMPLES_DIR / s.rel(s.splits[0]).split("/")[0]
        readme = (org_folder / "README.txt").read_text()
        assert "SAMPLE DATA" in readme


def test_upstream_schemas_match_the_dataset_cards():
    fw = _types(_table("fineweb-edu-dedup").schema)
    assert list(fw) == ["text", "id", "metadata"]
    meta = _table("fineweb-edu-dedup").schema.field("metadata").type
    assert [f.name for f in meta] == [
        "dump", "url", "date", "file_path", "language", "language_score", "token_count", "score", "int_score"
    ]
    assert str(meta.field("score").type) == "double" and str(meta.field("int_score").type) == "int64"

    assert _types(_table("cosmopedia-v2").schema) == {
        "prompt": "string", "text": "string", "token_length": "int64", "audience": "string", "format": "string",
        "seed_data": "string",
    }
    assert _types(_table("python-edu").schema) == {
        "blob_id": "string", "repo_name": "string", "path": "string", "length_bytes": "int64", "score": "double",
        "int_score": "int64",
    }
    se = _types(_table("stack-edu-python").schema)
    assert "text" not in se and se["src_encoding"] == "large_string" and se["blob_id"] == "large_string"
    assert se["detected_licenses"].startswith("large_list")

    fm = _types(_table("finemath-4plus").schema)
    assert fm["metadata"] == "string" and fm["score"] == "double" and fm["warc_record_offset"] == "int32"
    assert len(fm) == 16

    for split in ("train", "test"):
        assert _types(_table("gsm8k", split).schema) == {"question": "string", "answer": "string"}
        assert _types(_table("apps", split).schema) == {
            "problem_id": "int64", "question": "string", "solutions": "string", "input_output": "string",
            "difficulty": "string", "url": "string", "starter_code": "string",
        }
        for arc in ("arc-challenge", "arc-easy"):
            t = _types(_table(arc, split).schema)
            assert t["choices"] == "struct<text: list<element: string>, label: list<element: string>>"
            assert list(t) == ["id", "question", "choices", "answerKey"]
    assert _types(_table("orca-math").schema) == {"question": "string", "answer": "string"}
    # the plan's extra mid-train sets and the HellaSwag eval set (tools/make_samples/)
    for split in ("train", "validation"):
        assert _types(_table("boolq", split).schema) == {"question": "string", "answer": "bool", "passage": "string"}
    for module in ("math-algebra-linear-2d-composed", "math-arithmetic-mixed"):
        for split in ("train", "test"):
            assert _types(_table(module, split).schema) == {"question": "string", "answer": "string"}
    assert _types(_table("smoltalk2-mid", "OpenThoughts3_1.2M").schema) == {
        "messages": "list<element: struct<content: string, role: string>>", "source": "string"}
    hs = _types(_table("hellaswag", "validation").schema)
    assert list(hs) == ["ind", "activity_label", "ctx_a", "ctx_b", "ctx", "endings", "source_id", "split", "split_type", "label"]
    assert hs["ind"] == "int32" and hs["endings"] == "list<element: string>" and hs["label"] == "string"


def test_text_volume_is_enough_for_a_tiny_tokenizer_and_model():
    for name in ("fineweb-edu-dedup", "cosmopedia-v2"):
        n_chars = sum(len(t) for t in _table(name).column("text").to_pylist())
        assert 700_000 < n_chars < 1_500_000, (name, n_chars)
    total_size_bytes = sum(p.stat().st_size for p in SAMPLES_DIR.rglob("*") if p.is_file())
    assert total_size_bytes < 8_000_000


def test_fineweb_scores_are_nested_and_already_above_3():
    meta = _table("fineweb-edu-dedup").column("metadata").to_pylist()
    assert all(m["int_score"] >= 3 and m["score"] >= 2.5 for m in meta)


def test_finemath_metadata_is_a_json_string():
    for raw in _table("finemath-4plus").column("metadata").to_pylist():
        assert isinstance(raw, str) and "score" in json.loads(raw)


def test_blob_store_is_keyed_by_git_blob_sha1_with_missing_and_latin1_blobs():
    stored = {p.name for p in BLOB_STORE_DIR.iterdir()}
    for name in sorted(stored)[:20]:
        data = gzip.decompress((BLOB_STORE_DIR / name).read_bytes())
        assert hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest() == name

    py_ids = _table("python-edu").column("blob_id").to_pylist()
    assert sum(b not in stored for b in py_ids) == 2
    se = _table("stack-edu-python").to_pylist()
    assert sum(r["blob_id"] not in stored for r in se) == 1
    latin = [r for r in se if r["src_encoding"].lower() not in ("utf-8", "utf8")]
    assert len(latin) == 1
    raw = gzip.decompress((BLOB_STORE_DIR / latin[0]["blob_id"]).read_bytes())
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "shlex" in raw.decode(latin[0]["src_encoding"])
    assert len(raw) == latin[0]["length_bytes"]


def test_gsm8k_answers_end_with_a_correct_final_number():
    for split in ("train", "test"):
        for r in _table("gsm8k", split).to_pylist():
            body, final = r["answer"].rsplit("\n#### ", 1)
            assert re.fullmatch(r"-?\d+", final)
            calcs = re.findall(r"<<([^=<>]+)=([^<>]+)>>", body)
            assert calcs
            for expr, result in calcs:
                assert eval(expr) == float(result), (expr, result)  # our own generated arithmetic
            assert float(calcs[-1][1]) == float(final)


def test_arc_answer_key_is_one_of_the_labels():
    for name in ("arc-challenge", "arc-easy"):
        for split in ("train", "test"):
            for r in _table(name, split).to_pylist():
                assert r["answerKey"] in r["choices"]["label"]
                assert len(r["choices"]["label"]) == len(r["choices"]["text"]) == 4


def test_apps_solutions_are_json_or_empty_and_actually_solve_the_examples():
    rows = _table("apps").to_pylist()
    assert any(r["solutions"] == "" for r in rows)
    checked = 0
    for r in rows:
        if not r["solutions"]:
            continue
        sols = json.loads(r["solutions"])
        io = json.loads(r["input_output"])
        if "fn_name" in io or checked >= 4:
            continue
        out = subprocess.run([sys.executable, "-c", sols[0]], input=io["inputs"][0], capture_output=True, text=True, timeout=30, check=True)
        assert out.stdout == io["outputs"][0]
        checked += 1
    assert checked == 4


def test_planning_records_follow_contract_3():
    path = SAMPLES["planning"].files()[0]
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(recs) >= 20
    for r in recs:
        assert {"domain", "task", "problem", "thinking", "answer", "meta"} <= set(r)
        assert {"provider", "model", "cost_usd", "verified"} <= set(r["meta"])


def test_sample_path_resolves_inside_the_samples_folder_only():
    p = sample_path("samples://openai__gsm8k/main/train-00000.parquet")
    assert p.is_file()
    assert sample_path("openai__gsm8k/main/*.parquet").parent.is_dir()
    with pytest.raises(UserError, match="outside"):
        sample_path("samples://../errors.py")
    with pytest.raises(UserError, match="no split"):
        SAMPLES["orca-math"].rel("test")


@pytest.mark.slow  # regenerates every sample (~8 s alone, more on a busy machine)
def test_generator_reproduces_the_committed_files(tmp_path: Path):
    # the generator is a repository build tool (tools/make_samples), run as its docs say
    subprocess.run([sys.executable, "-m", "tools.make_samples", "--out", str(tmp_path)], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    readme = (SAMPLES_DIR / "HuggingFaceTB__smollm-corpus" / "README.txt").read_text()
    ver = "{}.{}.{}".format(*sys.version_info[:3])
    # templated samples are independent of the Python version; stdlib-derived ones need the same CPython
    folders = ["openai__gsm8k", "codeparrot__apps", "allenai__ai2_arc", "datakit__planning", "HuggingFaceTB__finemath",
               "microsoft__orca-math-word-problems-200k", "google__boolq", "deepmind__math_dataset", "HuggingFaceTB__smoltalk2",
               "Rowan__hellaswag"]
    if f"CPython {ver} " in readme:
        folders += ["HuggingFaceTB__smollm-corpus", "HuggingFaceTB__stack-edu", "softwareheritage"]
    for folder in folders:
        committed = sorted(p.relative_to(SAMPLES_DIR) for p in (SAMPLES_DIR / folder).rglob("*") if p.is_file())
        fresh = sorted(p.relative_to(tmp_path) for p in (tmp_path / folder).rglob("*") if p.is_file())
        assert committed == fresh, folder
        for rel in committed:
            if rel.suffix == ".parquet":  # same rows and types; footers name the pyarrow version, so not bytes
                assert pq.read_table(SAMPLES_DIR / rel).equals(pq.read_table(tmp_path / rel)), rel
            else:
                assert (SAMPLES_DIR / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel
