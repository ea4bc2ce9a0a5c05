"""`datakit synth sft`: planning records -> {prompt, completion} (Contract 3), re-checked, resumable."""

from __future__ import annotations

import json

import pytest

from datakit.errors import UserError
from datakit.synth.procedural import generate, make_record
from datakit.synth.sft import make_sft


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sft_export_layout_and_resume(tmp_path):
    generate(tmp_path / "plan", 10, seed=4, progress=False)
    s = make_sft(tmp_path / "plan", tmp_path / "sft", progress=False)
    plan = {r["id"]: r for r in _lines(tmp_path / "plan/records/procedural-s4.jsonl")}
    sft = _lines(tmp_path / "sft/records/sft.jsonl")
    assert s["records_written"] == 10 and len(sft) == 10
    for r in sft:
        src = plan[r["id"]]
        assert set(r) == {"id", "prompt", "completion", "meta"}
        assert r["prompt"] == f"<problem>{src['problem']}</problem>"
        assert r["completion"] == f"<thinking>{src['thinking']}</thinking><answer>{src['answer']}</answer>"
        assert r["meta"]["verified"] is True and r["meta"]["domain"] == src["domain"]
    again = make_sft(tmp_path / "plan", tmp_path / "sft", progress=False)
    assert again["records_written"] == 0 and again["records_skipped_existing"] == 10


def test_sft_drops_records_that_fail_their_checker(tmp_path):
    good, bad = make_record("logistics", 0), make_record("logistics", 1)
    bad["answer"] = bad["answer"].replace('"distance_km":', '"distance_km":1')  # claims a wrong distance
    llm = {"id": "llm-1", "domain": "research_planning", "task": "t", "problem": "p", "thinking": "Step 1: x",
           "answer": "a", "meta": {"provider": "azure", "verified": True}}
    (tmp_path / "plan/records").mkdir(parents=True)
    (tmp_path / "plan/records/x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (good, bad, llm)))
    s = make_sft(tmp_path / "plan", tmp_path / "sft", progress=False)
    assert (s["records_written"], s["rejects"]) == (2, 1)
    out = {r["id"]: r for r in _lines(tmp_path / "sft/records/sft.jsonl")}
    assert set(out) == {good["id"], "llm-1"} and out["llm-1"]["meta"]["verified"] is False
    assert _lines(tmp_path / "sft/rejects/sft.jsonl")[0]["id"] == bad["id"]


def test_sft_refuses_a_folder_of_non_planning_records(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d/x.jsonl").write_text('{"text": "hello"}\n')
    with pytest.raises(UserError, match="not a planning record"):
        make_sft(tmp_path / "d", tmp_path / "sft", progress=False)
    assert not (tmp_path / "sft").exists()
