"""`datakit cost`: a synth budget ledger (the real SQLite ledger, reserve/settle as a run does), GPU run cost
files (the schema `titan run` writes), the plan's budget, an Azure usage export in both of az's schemas,
and SkyPilot's own cost report (SkyPilot's environment, empty history)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from datakit.synth.ledger import Ledger

SAMPLE = Path(__file__).resolve().parents[1] / "datakit" / "cost" / "samples" / "az_consumption_usage.json"


def cost_json(folder: Path, phase: str, usd: float, *, stage: int = 1, gpu_hours: float = 2.0, tokens: int = 1_000_000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cost.json").write_text(json.dumps({
        "schema": "datakit.run_cost/1", "phase": phase, "stage": stage, "gpu": "NVIDIA A100 80GB PCIe", "n_gpus": 1,
        "usd_per_gpu_hour": usd / gpu_hours, "price_source": "SkyPilot catalog", "step": 10, "wall_hours": gpu_hours,
        "gpu_hours": gpu_hours, "usd": usd, "tokens": tokens, "tokens_processed": tokens, "tokens_per_s": 1.0, "mfu": None,
        "usd_per_billion_tokens": usd / tokens * 1e9, "estimate": None, "projected": None, "segments": [{}], "updated": "",
    }))


@pytest.fixture
def project(tmp_path):
    synth = tmp_path / "data" / "synth" / "planning"
    ledger = Ledger(synth, budget_usd=20.0)
    a = ledger.reserve(0.50, label="one")
    ledger.settle(a, 0.40)
    ledger.reserve(0.25, label="in flight")  # still open: committed, not spent
    ledger.close()
    (synth / "records").mkdir()
    (synth / "records" / "run1.jsonl").write_text(
        json.dumps({"id": "r1", "meta": {"provider": "azure", "model": "kimi-k2", "cost_usd": 0.30}}) + "\n"
        + json.dumps({"id": "r2", "meta": {"provider": "azure", "model": "kimi-k2", "cost_usd": 0.05}}) + "\n")
    cost_json(tmp_path / "outputs" / "longctx_sft_dpo", "longctx_sft_dpo", 36.73)
    cost_json(tmp_path / "outputs" / "pretrain" / "stage1-seq1024", "pretrain", 0.0, stage=1)
    (tmp_path / "outputs" / "other.json").write_text("{}")  # not a cost file: ignored
    return tmp_path


def datakit(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "datakit.cli.main", "cost", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cost_json_adds_synth_and_gpu_against_the_plans_credit(project):
    r = datakit("--json", cwd=project)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    (s,) = rep["synth"]
    assert (s["spent_usd"], s["reserved_usd"], s["budget_usd"], s["n_calls"]) == (pytest.approx(0.40), pytest.approx(0.25), 20.0, 1)
    assert s["models"] == {"azure/kimi-k2": pytest.approx(0.35)} and s["n_records"] == 2
    assert sorted((g["phase"], g["stage"]) for g in rep["gpu"]) == [("longctx_sft_dpo", 1), ("pretrain", 1)]
    t, p = rep["totals"], rep["plan"]
    assert t["recorded_usd"] == pytest.approx(0.40 + 0.25 + 36.73)
    assert p["remaining_credit_usd"] == pytest.approx(100 - (0.40 + 0.25 + 36.73))
    assert (p["phase3_recorded_usd"], p["phase3_usd"]) == (pytest.approx(36.73), 55.0)


def test_cost_table_shows_synth_and_gpu_rows_and_the_budget(project):
    r = datakit(cwd=project)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "spent      $0.40 of $20.00 budget, reserved $0.25" in out and "azure/kimi-k2 $0.35" in out
    assert "longctx_sft_dpo  stage 1  1 x NVIDIA A100 80GB PCIe" in out and "$36.73" in out
    assert "credit $100.00 - counted $37.38 = $62.62 remaining" in out
    assert "phase 3 (longctx_sft_dpo): $36.73 recorded vs the plan's $55.00" in out
    r = datakit("--credit", "10", cwd=project)
    assert "$-27.38 remaining (OVER BUDGET)" in r.stdout


def test_azure_usage_export_is_reconciled_with_the_recorded_runs(project):
    r = datakit("--azure-usage", str(SAMPLE), "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)["azure"]
    items = json.loads(SAMPLE.read_text())
    assert a["n_items"] == len(items) and a["total"] == pytest.approx(sum(i["cost"] for i in items))
    vm = sum(i["cost"] for i in items if i["meterDetails"]["meterCategory"] == "Virtual Machines")
    assert a["by_category"]["Virtual Machines"] == pytest.approx(vm)
    assert a["by_resource_group"] == {"datakit-rg": pytest.approx(a["total"])}
    assert a["minus_recorded_gpu_usd"] == pytest.approx(a["total"] - 36.73)
    assert (a["first_day"], a["last_day"]) == ("2026-12-02", "2026-12-03")
    plan = json.loads(r.stdout)["plan"]
    assert plan["remaining_credit_usd"] == pytest.approx(100 - (a["total"] + 0.40 + 0.25))  # the bill, not our record
    text = datakit("--azure-usage", str(SAMPLE), cwd=project).stdout
    assert "Azure bill (" in text and "Virtual Machines $38.57" in text


def test_the_older_flat_az_schema_reads_too(project, tmp_path):
    old = [{"id": "/subscriptions/x/providers/Microsoft.Billing/billingPeriods/202612/providers/Microsoft.Consumption/usageDetails/1",
            "name": "1", "type": "Microsoft.Consumption/usageDetails", "usageStart": "2026-12-02T00:00:00Z", "usageEnd": "2026-12-02T23:59:59Z",
            "instanceName": "datakit-a100", "instanceId": "/subscriptions/x/resourceGroups/DATAKIT-RG/providers/Microsoft.Compute/virtualMachines/datakit-a100",
            "currency": "USD", "usageQuantity": "2.0", "billableQuantity": "2.0", "pretaxCost": "7.346", "isEstimated": False,
            "meterDetails": None, "consumedService": "Microsoft.Compute"}]
    f = tmp_path / "old.json"
    f.write_text(json.dumps(old))
    a = json.loads(datakit("--azure-usage", str(f), "--json", cwd=project).stdout)["azure"]
    assert a["total"] == pytest.approx(7.346) and a["by_resource_group"] == {"datakit-rg": pytest.approx(7.346)}
    assert a["by_category"] == {"Microsoft.Compute": pytest.approx(7.346)}


def test_the_rest_apis_envelope_and_properties_read_too(project, tmp_path):
    """`az rest` on .../providers/Microsoft.Consumption/usageDetails: {"value": [{id, kind, properties: {...}}]}."""
    items = json.loads(SAMPLE.read_text())
    head = ("id", "name", "type", "kind", "tags")
    rest = {"value": [{**{k: i[k] for k in head if k in i}, "properties": {k: v for k, v in i.items() if k not in head}} for i in items]}
    f = tmp_path / "rest.json"
    f.write_text(json.dumps(rest))
    got = json.loads(datakit("--azure-usage", str(f), "--json", cwd=project).stdout)["azure"]
    flat = json.loads(datakit("--azure-usage", str(SAMPLE), "--json", cwd=project).stdout)["azure"]
    assert got["total"] == pytest.approx(flat["total"]) and got["total"] > 0
    assert got["by_category"] == pytest.approx(flat["by_category"]) and got["by_resource_group"] == flat["by_resource_group"]
    assert (got["first_day"], got["last_day"]) == (flat["first_day"], flat["last_day"])


@pytest.mark.parametrize("content,expect", [("not json", "not JSON"), ('{"a": 1}', "expected a JSON list"), ('[{"x": 1}]', "usage detail 0 has no readable cost")])
def test_a_bad_usage_file_is_a_clear_error(project, tmp_path, content, expect):
    f = tmp_path / "bad.json"
    f.write_text(content)
    r = datakit("--azure-usage", str(f), cwd=project)
    assert r.returncode == 2 and expect in r.stderr and "az consumption usage list -o json" in r.stderr and "Traceback" not in r.stderr


def test_skypilots_cost_report_is_read_from_its_environment(project, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # SkyPilot's state: a fresh, empty history
    r = datakit("--sky", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sky"] == {"clusters": [], "total_usd": 0}
    assert "SkyPilot cost report: 0 cluster(s), $0.00" in datakit("--sky", cwd=project).stdout


def test_a_cost_json_from_your_own_training_loop_counts_too(project):
    """datakit.adapters.records.CostRecorder (examples/plain_torch.py) writes its own fields: the same ledger reads them."""
    from datakit.adapters.records import CostRecorder

    rec = CostRecorder(project / "outputs" / "my-loop" / "cost.json", gpu_type="RTX 5090", n_gpus=2, usd_per_gpu_hour=0.69)
    for _ in range(3):
        rec.step(tokens=4096)
    written = rec.close()
    rep = json.loads(datakit("--json", cwd=project).stdout)
    (row,) = [g for g in rep["gpu"] if g["phase"] == "my-loop"]
    assert (row["gpu"], row["n_gpus"], row["tokens"]) == ("RTX 5090", 2, 3 * 4096)
    assert row["usd"] == pytest.approx(written["cost_usd"]) and row["gpu_hours"] == pytest.approx(written["gpu_hours"])
    assert rep["totals"]["gpu_usd"] == pytest.approx(36.73 + written["cost_usd"])
    assert "my-loop" in datakit(cwd=project).stdout


def test_datakit_cost_does_not_import_torch():
    code = "import sys, datakit.cost.report, datakit.cost.runs, datakit.cost.azure, datakit.cli.cost; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_procedural_records_without_a_ledger_are_listed_at_zero(tmp_path):
    from datakit.synth.procedural import generate

    generate(tmp_path / "data" / "synth" / "procedural", count=5, seed=1, progress=False)
    rep = json.loads(datakit("--json", cwd=tmp_path).stdout)
    (s,) = rep["synth"]
    assert s["folder"].endswith("procedural") and s["spent_usd"] == 0 and s["budget_usd"] is None
    assert s["n_records"] == 5 and s["models"] == {"procedural": 0}
    assert "no paid calls, 5 records (procedural $0.00)" in datakit(cwd=tmp_path).stdout
