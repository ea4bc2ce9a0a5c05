"""`run_planning` end to end against the real local server: budget cap, contract, resume, refusals, secrets."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from datakit.errors import UserError
from datakit.synth.dryrun import dry_run, format_dry_run
from datakit.synth.planning import run_planning
from datakit.synth.status import format_status, synth_status
from datakit.synth.validate import Rejected, parse_planning_output

PRICE_IN, PRICE_OUT = 2.5, 10.0  # litellm's price of azure/gpt-4o, $ per 1M tokens


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def all_records(out):
    return [r for p in sorted((out / "records").glob("*.jsonl")) for r in lines(p)]


def test_budget_never_exceeded_at_concurrency_32_with_random_failures(azure_env, fast_spec, tmp_path):
    server = azure_env
    server.faults = {"429": 0.1, "500": 0.05, "503": 0.05, "slow": 0.03, "length": 0.05, "malformed": 0.05}
    server.slow_s = 2.5
    out = tmp_path / "out"
    budget = 0.25  # worst case per call ~ $0.0043, real ~ $0.0016: the budget ends the run
    s = run_planning(out, provider="azure", budget_usd=budget, count=10_000, spec_path=fast_spec(timeout_s=1.0), concurrency=32, progress=False)
    assert s["stopped"] == "budget reached"
    billed_usd = server.billed_cost_usd(PRICE_IN, PRICE_OUT)  # the server's own count
    assert billed_usd <= budget
    assert s["spent_total_usd"] <= budget + 1e-9
    assert s["spent_total_usd"] >= billed_usd - 1e-9  # the ledger never counts less than was billed
    assert billed_usd > 0.8 * budget  # and the budget was really used
    assert server.status_counts.get(429, 0) > 0 and server.status_counts.get(500, 0) > 0
    records = all_records(out)
    assert len(records) == s["accepted"] > 50
    assert len({r["id"] for r in records}) == len(records)
    assert s["rejected"].get("truncated", 0) > 0 and s["rejected"].get("missing_answer", 0) > 0


def test_records_follow_contract_3_and_rejects_are_kept_apart(azure_env, fast_spec, tmp_path):
    server = azure_env
    server.faults = {"length": 0.15, "malformed": 0.15, "duplicate": 0.15}
    out = tmp_path / "out"
    s = run_planning(out, provider="azure", budget_usd=5.0, count=30, spec_path=fast_spec(), progress=False)
    assert s["stopped"] == "count reached" and s["accepted_total"] == 30
    (records_file,) = (out / "records").glob("*.jsonl")
    assert records_file.stem == s["run_id"]
    records = lines(records_file)
    assert len(records) == 30
    for r in records:
        assert set(r) == {"id", "domain", "task", "problem", "thinking", "answer", "meta"}
        assert r["problem"] and r["thinking"] and r["answer"]
        m = r["meta"]
        assert m["provider"] == "azure" and m["model"] == "azure/gpt-4o" and m["verified"] is False
        assert (m["price_in_usd_per_mtok"], m["price_out_usd_per_mtok"]) == (PRICE_IN, PRICE_OUT)
        assert m["cost_usd"] > 0
    rejects = lines(out / "rejects" / f"{s['run_id']}.jsonl")
    reasons = Counter(r["reason"] for r in rejects)
    assert reasons["truncated"] and reasons["missing_answer"] and reasons["near_duplicate"]
    assert reasons == Counter(s["rejected"])
    assert not {r["id"] for r in rejects} & {r["id"] for r in records}
    # status reads it back: records, rejects by reason, spend, $/1M tokens
    st = synth_status(out)
    assert st["n_records"] == 30 and st["rejects_by_reason"] == dict(reasons)
    assert st["spent_usd"] == pytest.approx(server.billed_cost_usd(PRICE_IN, PRICE_OUT))
    assert st["usd_per_mtok"] > 0
    assert "rejects:" in format_status(st)


def test_rerun_resumes_without_duplicates(azure_env, fast_spec, tmp_path):
    out = tmp_path / "out"
    spec = fast_spec()
    first = run_planning(out, provider="azure", budget_usd=5.0, count=12, spec_path=spec, progress=False)
    again = run_planning(out, provider="azure", budget_usd=5.0, count=12, spec_path=spec, progress=False)
    assert again["accepted"] == 0 and again["spent_usd"] == 0  # nothing left to do, nothing spent
    more = run_planning(out, provider="azure", budget_usd=5.0, count=20, spec_path=spec, progress=False)
    assert (first["accepted"], more["accepted"]) == (12, 8)
    ids = [r["id"] for r in all_records(out)]
    assert sorted(ids) == [f"planning-s0-{i:08d}" for i in range(20)]
    assert first["spent_usd"] + more["spent_usd"] == pytest.approx(more["spent_total_usd"])
    assert len(list((out / "records").glob("*.jsonl"))) == 2  # the idle rerun left no empty run file


def test_missing_credentials_fail_before_any_request(server, fast_spec, tmp_path, monkeypatch):
    monkeypatch.delenv("AZURE_API_KEY", raising=False)
    monkeypatch.setenv("AZURE_API_BASE", server.url)
    with pytest.raises(UserError, match="AZURE_API_KEY is not set"):
        run_planning(tmp_path / "out", provider="azure", budget_usd=1.0, count=5, spec_path=fast_spec(), progress=False)
    assert server.requests == 0
    assert not (tmp_path / "out").exists()


def test_unknown_price_refuses_to_start(azure_env, tmp_path, fast_spec):
    spec = fast_spec()
    text = spec.read_text().replace('price_model = "azure/gpt-4o"', 'price_model = "azure/not-a-model"')
    spec.write_text(text.replace('deployment = "gpt-4o"', 'deployment = "my-planner"'))
    with pytest.raises(UserError, match="no price known") as e:
        run_planning(tmp_path / "out", provider="azure", budget_usd=1.0, count=5, spec_path=spec, progress=False)
    assert e.value.field == "provider.azure.price_in_usd_per_mtok"
    assert azure_env.requests == 0


def test_keys_are_absent_from_every_file_written(azure_env, fast_spec, fake_key, tmp_path):
    azure_env.faults = {"malformed": 0.3, "500": 0.2}
    out = tmp_path / "out"
    run_planning(out, provider="azure", budget_usd=1.0, count=10, spec_path=fast_spec(), progress=False)
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"ledger.sqlite", ".lock"}
    for p in written:
        assert fake_key.encode() not in p.read_bytes(), p
    assert fake_key in azure_env.seen_auth  # ...while the server did receive it


def test_unsupported_batch_and_unknown_provider_are_clear_user_errors(azure_env, fast_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "g-key")
    with pytest.raises(UserError, match="not supported for this provider"):
        run_planning(tmp_path / "o", provider="gemini", budget_usd=1.0, count=5, spec_path=fast_spec(), batch=True)
    with pytest.raises(UserError, match="no provider profile named 'nope'"):
        run_planning(tmp_path / "o", provider="nope", budget_usd=1.0, count=5, spec_path=fast_spec())
    assert azure_env.requests == 0


def test_azure_batch_api_at_half_price_within_budget(azure_env, fast_spec, tmp_path):
    server = azure_env
    server.faults = {"length": 0.1}
    out = tmp_path / "out"
    spec = fast_spec(batch_size=8, batch_poll_s=0.05)
    s = run_planning(out, provider="azure", budget_usd=5.0, count=20, spec_path=spec, batch=True, progress=False)
    assert s["stopped"] == "count reached" and s["accepted_total"] == 20
    assert server.requests == 0 and server.batch_requests == 20 + s["rejected"].get("truncated", 0)
    records = all_records(out)
    assert sorted(r["id"] for r in records) == sorted({r["id"] for r in records})
    assert (records[0]["meta"]["price_in_usd_per_mtok"], records[0]["meta"]["price_out_usd_per_mtok"]) == (PRICE_IN / 2, PRICE_OUT / 2)
    assert s["spent_total_usd"] == pytest.approx(server.billed_cost_usd(PRICE_IN / 2, PRICE_OUT / 2))
    states = [json.loads(p.read_text()) for p in (out / "batches").glob("*.json")]
    assert states and all(st["status"] == "collected" for st in states)
    # a small budget shrinks the next job to its worst case and stops there
    small = run_planning(tmp_path / "small", provider="azure", budget_usd=0.01, count=100, spec_path=spec, batch=True, progress=False)
    assert small["stopped"] == "budget reached" and small["spent_total_usd"] <= 0.01


def test_dry_run_states_what_the_budget_buys_and_the_plans_error(real_spec):
    report = dry_run("azure", 100.0, spec_path=real_spec)
    azure = next(r for r in report["rows"] if r["provider"] == "azure")
    assert azure["n_examples"] == int(100 // azure["expected_cost_usd_per_example"])
    assert azure["worst_cost_usd_per_example"] > azure["expected_cost_usd_per_example"]
    assert report["plan_claim"]["n_tokens"] == pytest.approx(3_333_333.33, rel=1e-6)
    text = format_dry_run(report)
    assert "3,333,333 tokens = 3.33M" in text and "3.3B" in text


def test_validation_rules():
    good = "<problem>P</problem><thinking>1. a\n2. b\n3. c</thinking><answer>A</answer>"
    assert parse_planning_output(good, "stop")["answer"] == "A"
    for text, finish, reason in [
        (good, "length", "truncated"),
        (good.replace("<answer>A</answer>", ""), "stop", "missing_answer"),
        (good + "<problem>Q</problem>", "stop", "repeated_problem"),
        (good.replace("<answer>A", "<answer> "), "stop", "empty_answer"),
        (good.replace("1. a\n2. b\n3. c", "just think"), "stop", "no_numbered_steps"),
    ]:
        with pytest.raises(Rejected) as e:
            parse_planning_output(text, finish)
        assert e.value.reason == reason


def test_a_run_whose_answers_are_almost_all_rejected_stops(azure_env, fast_spec, tmp_path):
    azure_env.faults = {"length": 1.0}  # e.g. max_tokens far too small for the prompt
    with pytest.raises(UserError, match="50 of the last 50 answers were rejected .truncated: 50.") as e:
        run_planning(tmp_path / "out", provider="azure", budget_usd=5.0, count=1000, spec_path=fast_spec(), progress=False)
    assert "rejects/" in e.value.fix
    assert azure_env.status_counts[200] < 50 + 8 + 1  # stopped within one round of the concurrency


def test_openai_compatible_local_server_with_spec_prices(server, fast_spec, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)  # local servers need no key
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_BASE", server.openai_url)
    out = tmp_path / "local"
    s = run_planning(out, provider="openai-compatible", budget_usd=0.01, count=5, spec_path=fast_spec(), progress=False)
    assert s["accepted"] == 5 and set(server.seen_paths) == {"/v1/chat/completions"}
    meta = all_records(out)[0]["meta"]
    assert (meta["price_source"], meta["price_in_usd_per_mtok"], meta["price_out_usd_per_mtok"]) == ("spec", 0.05, 0.2)
    assert s["spent_total_usd"] == pytest.approx(server.billed_cost_usd(0.05, 0.2))


def test_batch_job_submitted_before_a_crash_is_collected_by_the_rerun(azure_env, fast_spec, tmp_path):
    out = tmp_path / "out"
    spec = fast_spec(batch_size=8, batch_poll_s=0.05)
    first = run_planning(out, provider="azure", budget_usd=1.0, count=8, spec_path=spec, batch=True, progress=False)
    # as if the process died after submitting the job and before writing its answers
    (state_path,) = (out / "batches").glob("*.json")
    state = json.loads(state_path.read_text())
    state_path.write_text(json.dumps(dict(state, status="submitted")))
    for p in (out / "records").glob("*.jsonl"):
        p.unlink()
    again = run_planning(out, provider="azure", budget_usd=1.0, count=8, spec_path=spec, batch=True, progress=False)
    assert len(azure_env.batches) == 1  # no new job: the old one was collected
    assert again["accepted_total"] == 8 and again["spent_usd"] == 0  # and not paid twice
    assert sorted(r["id"] for r in all_records(out)) == [f"planning-s0-{i:08d}" for i in range(8)]
    assert first["spent_total_usd"] == pytest.approx(again["spent_total_usd"])
