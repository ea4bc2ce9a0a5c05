"""`datakit synth planning --provider procedural`: verified records, deterministic, resumable, clear errors."""

from __future__ import annotations

import json
import re

import pytest

from datakit.errors import UserError
from datakit.synth.procedural import DOMAINS, check_planning_record, generate, make_record, parse_difficulty
from datakit.synth.procedural.common import render_record_text


def _records(folder):
    return [json.loads(line) for p in sorted((folder / "records").glob("*.jsonl")) for line in p.read_text().splitlines()]


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_every_generated_answer_passes_its_checker(difficulty):
    for domain in DOMAINS:
        for i in range(60):
            rec = make_record(domain, i, seed=3, difficulty=difficulty)
            assert check_planning_record(rec) == [], (domain, i)


def test_records_follow_the_planning_contract(tmp_path):
    summary = generate(tmp_path, 10, seed=7, progress=False)
    recs = _records(tmp_path)
    assert summary["records_written"] == 10 and len(recs) == 10
    assert {r["domain"] for r in recs} == set(DOMAINS)
    assert summary["per_domain"] == {d: 2 for d in DOMAINS}
    for r in recs:
        assert set(r) >= {"id", "domain", "task", "problem", "thinking", "answer", "meta"}
        m = r["meta"]
        assert (m["provider"], m["model"], m["cost_usd"], m["verified"], m["seed"]) == ("procedural", None, 0, True, 7)
        assert isinstance(m["instance"], dict) and m["difficulty"] == "medium"
        assert re.match(r"Step 1: .+\nStep 2: ", r["thinking"])
        assert "\nPLAN: {" in r["answer"]
        text = render_record_text(r["problem"], r["thinking"], r["answer"])
        assert text.startswith("<problem>") and "</problem><thinking>Step 1:" in text and text.endswith("</answer>")
    assert len({r["id"] for r in recs}) == 10


def test_same_seed_same_records_and_rerun_appends_nothing(tmp_path):
    generate(tmp_path / "a", 12, seed=5, progress=False)
    generate(tmp_path / "b", 12, seed=5, progress=False)
    assert (tmp_path / "a/records/procedural-s5.jsonl").read_bytes() == (tmp_path / "b/records/procedural-s5.jsonl").read_bytes()
    again = generate(tmp_path / "a", 12, seed=5, progress=False)
    assert again["records_written"] == 0 and again["records_skipped_existing"] == 12
    more = generate(tmp_path / "a", 15, seed=5, progress=False)
    assert more["records_written"] == 3
    ids = [r["id"] for r in _records(tmp_path / "a")]
    assert len(ids) == len(set(ids)) == 15
    other = generate(tmp_path / "c", 12, seed=6, progress=False)
    assert other["records_written"] == 12
    assert not {r["problem"] for r in _records(tmp_path / "c")} & {r["problem"] for r in _records(tmp_path / "a")}


def test_a_torn_last_line_is_repaired_on_resume(tmp_path):
    generate(tmp_path, 5, seed=1, progress=False)
    path = tmp_path / "records/procedural-s1.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]) + lines[4][:40])  # killed mid-write
    s = generate(tmp_path, 5, seed=1, progress=False)
    assert s["records_written"] == 1
    assert [r["meta"]["index"] for r in _records(tmp_path)] == [0, 1, 2, 3, 4]


def test_difficulty_knobs_change_size_and_bad_settings_are_refused(tmp_path):
    small = make_record("software_architecture", 0, difficulty="easy")["meta"]["instance"]
    big = make_record("software_architecture", 0, difficulty="hard,size=20")["meta"]["instance"]
    assert len(small["tasks"]) == 5 and len(big["tasks"]) == 20
    assert parse_difficulty("hard,tightness=0.9", "research_planning")[1] == {"size": 10, "tightness": 0.9}
    for bad, field_word in [("extreme", "difficulty"), ("hard,size=1", "impossible"), ("medium,tightness=5", "impossible"),
                            ("medium,color=3", "unknown"), ("medium,size=big", "not a number")]:
        with pytest.raises(UserError) as e:
            generate(tmp_path / "bad", 5, difficulty=bad, progress=False)
        assert field_word in str(e.value) and e.value.field == "difficulty"
    with pytest.raises(UserError, match="unknown domain"):
        generate(tmp_path / "bad", 5, domains=["astrology"], progress=False)
    assert not (tmp_path / "bad").exists()  # nothing half-written


def test_domain_subset(tmp_path):
    s = generate(tmp_path, 6, domains=["logistics", "multi_agent"], progress=False)
    assert s["per_domain"] == {"logistics": 3, "multi_agent": 3}
    assert {r["domain"] for r in _records(tmp_path)} == {"logistics", "multi_agent"}


def test_a_second_writer_on_the_same_folder_is_refused(tmp_path):
    from datakit.synth.store import OutputFolder

    holder = OutputFolder(tmp_path)
    holder.lock()
    try:
        with pytest.raises(UserError, match="another run"):
            generate(tmp_path, 3, progress=False)
    finally:
        holder.unlock()
    assert generate(tmp_path, 3, progress=False)["records_written"] == 3
