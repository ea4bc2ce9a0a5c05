"""LLM-made flaws against the real local chat-completions server (tests/synth/conftest.py), under the budget ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datakit.errors import UserError
from datakit.synth.dpo_llm import count_steps, judge_rewrite, load_dpo_spec, make_dpo_llm
from datakit.synth.procedural import generate, make_record
from datakit.synth.verify import verify_folder

REPO = Path(__file__).resolve().parents[2]


def _fast_dpo_spec(tmp_path: Path) -> Path:
    text = (REPO / "synth" / "dpo.toml").read_text()
    for key, value in {"max_tokens": "400", "timeout_s": "2.0", "backoff_base_s": "0.01", "backoff_max_s": "0.05",
                       "concurrency": "8"}.items():
        text = "\n".join(f"{key} = {value}" if line.startswith(f"{key} =") else line for line in text.splitlines())
    path = tmp_path / "dpo.toml"
    path.write_text(text)
    return path


def _llm_planning_set(folder: Path, n: int) -> None:
    """Planning records as an LLM provider writes them: no structured instance."""
    (folder / "records").mkdir(parents=True)
    with open(folder / "records" / "run.jsonl", "w") as f:
        for i in range(n):
            rec = make_record(["logistics", "research_planning"][i % 2], i)
            rec["id"] = f"planning-s0-{i}"
            rec["meta"] = {"provider": "azure", "model": "azure/gpt-4o", "cost_usd": 0.01, "verified": False}
            f.write(json.dumps(rec) + "\n")


def test_llm_flaws_under_budget_and_resume(azure_env, fast_spec, tmp_path):
    server = azure_env
    _llm_planning_set(tmp_path / "plan", 12)
    kw = dict(provider="azure", budget_usd=1.0, spec_path=_fast_dpo_spec(tmp_path), planning_spec_path=fast_spec(),
              progress=False)
    s = make_dpo_llm(tmp_path / "plan", tmp_path / "dpo", **kw)
    assert s["pairs_written"] == 12 and s["verified_pairs"] == 0 and server.requests == 12
    pairs = [json.loads(x) for p in (tmp_path / "dpo/records").glob("*.jsonl") for x in p.read_text().splitlines()]
    for p in pairs:
        assert p["prompt"].startswith("<problem>") and p["chosen"] != p["rejected"]
        assert p["meta"]["provider"] == "azure" and p["meta"]["cost_usd"] > 0 and p["meta"]["verified"] is False
        assert 1 <= p["meta"]["step"] <= count_steps(p["chosen"].split("<thinking>")[1])
    # the server's own bill stays within what the ledger recorded and the budget
    assert server.billed_cost_usd(2.5, 10.0) <= s["spent_total_usd"] + 1e-9 <= 1.0
    again = make_dpo_llm(tmp_path / "plan", tmp_path / "dpo", **kw)
    assert again["pairs_written"] == 0 and again["records_skipped_existing"] == 12 and server.requests == 12
    report = verify_folder(tmp_path / "dpo")
    assert report.ok and report.total("unchecked") == 12
    assert not any("DO-NOT-LEAK" in p.read_text(errors="ignore") for p in (tmp_path / "dpo").rglob("*") if p.is_file())


def test_llm_rewrites_of_procedural_records_are_checked(azure_env, fast_spec, tmp_path):
    generate(tmp_path / "plan", 5, progress=False)
    s = make_dpo_llm(tmp_path / "plan", tmp_path / "dpo", provider="azure", budget_usd=1.0,
                     spec_path=_fast_dpo_spec(tmp_path), planning_spec_path=fast_spec(), progress=False)
    # the test server's rewrite has no PLAN line, so the checker rejects it: a proven (if crude) flaw
    assert s["pairs_written"] == s["verified_pairs"] == 5
    assert verify_folder(tmp_path / "dpo").total("pass") == 5


def test_budget_too_small_stops_before_spending_more(azure_env, fast_spec, tmp_path):
    _llm_planning_set(tmp_path / "plan", 6)
    s = make_dpo_llm(tmp_path / "plan", tmp_path / "dpo", provider="azure", budget_usd=0.001,
                     spec_path=_fast_dpo_spec(tmp_path), planning_spec_path=fast_spec(), progress=False)
    assert s["stopped"] == "budget reached" and s["spent_total_usd"] <= 0.001


def test_judge_rewrite_rules():
    rec = make_record("software_architecture", 0)
    chosen = f"<thinking>{rec['thinking']}</thinking><answer>{rec['answer']}</answer>"
    assert judge_rewrite(rec, chosen, "stop")[0] == "same_as_chosen"
    assert judge_rewrite(rec, chosen.replace("\n", "  \n"), "stop")[0] == "same_as_chosen"
    assert judge_rewrite(rec, "<thinking>x</thinking>", "stop")[0] == "malformed"
    assert judge_rewrite(rec, chosen, "length")[0] == "truncated"
    wrong = chosen.replace('"makespan":', '"makespan":9')
    status, _, _, errors, checked = judge_rewrite(rec, wrong, "stop")
    assert (status, checked) == ("kept", True) and errors
    rec2 = dict(rec, meta={})
    assert judge_rewrite(rec2, wrong, "stop")[:1] == ("kept",)


def test_refusals_before_any_request(server, fast_spec, tmp_path, monkeypatch):
    monkeypatch.delenv("AZURE_API_KEY", raising=False)
    _llm_planning_set(tmp_path / "plan", 2)
    kw = dict(spec_path=_fast_dpo_spec(tmp_path), planning_spec_path=fast_spec(), progress=False)
    with pytest.raises(UserError, match="AZURE_API_KEY"):
        make_dpo_llm(tmp_path / "plan", tmp_path / "dpo", provider="azure", budget_usd=1.0, **kw)
    monkeypatch.setenv("AZURE_API_KEY", "k")
    monkeypatch.setenv("AZURE_API_BASE", server.url)
    with pytest.raises(UserError, match="budget"):
        make_dpo_llm(tmp_path / "plan", tmp_path / "dpo", provider="azure", budget_usd=None, **kw)
    with pytest.raises(UserError, match="unknown flaw"):
        make_dpo_llm(tmp_path / "plan", tmp_path / "dpo", provider="azure", budget_usd=1.0, flaws=["nope"], **kw)
    assert server.requests == 0 and not (tmp_path / "dpo").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text('[prompt]\nsystem = "s"\nuser = "no placeholders"\n')
    with pytest.raises(UserError, match="prompt lacks"):
        load_dpo_spec(bad)
    assert load_dpo_spec(REPO / "synth" / "dpo.toml").dpo.flaws
