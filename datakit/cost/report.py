"""Totals against the plan's budget, and the table `datakit cost` prints."""

from __future__ import annotations

from pathlib import Path

# The seed plan's money (docs/plan.md): $100 of Azure credit in all; its cost table puts phase 3 at $55
# (its text says $9.80 for the same run; `titan estimate` checks both, docs/deviations.md).
PLAN_CREDIT_USD = 100.0
PLAN_PHASE3_USD = 55.0
PHASE3 = "longctx_sft_dpo"


def cost_report(roots: list[Path], *, credit_usd: float = PLAN_CREDIT_USD, azure_usage: str | Path | None = None, sky: bool = False) -> dict:
    from datakit.cost.runs import gpu_rows, synth_rows

    synth, gpu = synth_rows(roots), gpu_rows(roots)
    synth_spent = sum(r["spent_usd"] for r in synth)
    synth_reserved = sum(r["reserved_usd"] for r in synth)
    gpu_usd = sum(r["usd"] for r in gpu)
    by_phase: dict[str, float] = {}
    for r in gpu:
        by_phase[r["phase"]] = by_phase.get(r["phase"], 0.0) + r["usd"]
    recorded = synth_spent + synth_reserved + gpu_usd
    report = {
        "roots": [str(r) for r in roots], "synth": synth, "gpu": gpu,
        "totals": {"synth_spent_usd": synth_spent, "synth_reserved_usd": synth_reserved, "gpu_usd": gpu_usd,
                   "gpu_usd_by_phase": by_phase, "recorded_usd": recorded},
        "plan": {"credit_usd": credit_usd, "phase3_usd": PLAN_PHASE3_USD, "phase3_recorded_usd": by_phase.get(PHASE3, 0.0)},
        "azure": None, "sky": None,
    }
    spent = recorded
    if azure_usage is not None:
        from datakit.cost.azure import read_azure_usage

        bill = read_azure_usage(azure_usage)
        report["azure"] = bill | {"minus_recorded_gpu_usd": bill["total"] - gpu_usd}
        spent = max(recorded, bill["total"] + synth_spent + synth_reserved)  # the bill is the truth for what Azure charged
    if sky:
        from datakit.cost.sky import sky_cost_report

        clusters = sky_cost_report()
        report["sky"] = {"clusters": clusters, "total_usd": sum(float(c["total_cost"] or 0) for c in clusters)}
    report["plan"]["remaining_credit_usd"] = credit_usd - spent
    report["plan"]["counted_usd"] = spent
    return report


def _usd(x: float | None) -> str:
    return "n/a" if x is None else f"${x:,.2f}"


def format_report(r: dict) -> str:
    lines = [f"datakit cost over {', '.join(r['roots'])}", "", "synthetic data (budget ledgers; procedural folders cost nothing)"]
    if not r["synth"]:
        lines.append("  none found (a synth run keeps <out>/ledger.sqlite)")
    for s in r["synth"]:
        models = ", ".join(f"{m} {_usd(c)}" for m, c in s["models"].items()) or "no records"
        if s["budget_usd"] is None and not s["n_calls"]:
            lines.append(f"  {s['folder']:<40} no paid calls, {s['n_records']:,} records ({models})")
            continue
        lines.append(f"  {s['folder']:<40} spent {_usd(s['spent_usd']):>10} of {_usd(s['budget_usd'])} budget, reserved {_usd(s['reserved_usd'])}, "
                     f"{s['n_calls']:,} billed calls, {s['n_records']:,} records ({models})")
    lines += ["", "GPU runs (cost.json per run folder)"]
    if not r["gpu"]:
        lines.append("  none found (every `titan run` writes <run>/cost.json)")
    for g in r["gpu"]:
        per_b = f", {_usd(g['usd_per_billion_tokens'])}/B tokens" if g["usd_per_billion_tokens"] is not None else ""
        lines.append(f"  {g['phase']:<16} stage {g['stage']}  {g['n_gpus']} x {g['gpu']:<22} {g['wall_hours']:9.3f} h  {g['gpu_hours']:9.3f} GPU-h  "
                     f"x {_usd(g['usd_per_gpu_hour'])}/GPU-h = {_usd(g['usd']):>10}  {g['tokens']:,} tokens{per_b}  ({g['price_source'][:60]})")
    t, p = r["totals"], r["plan"]
    lines += ["", "totals",
              f"  synth spent {_usd(t['synth_spent_usd'])} + reserved {_usd(t['synth_reserved_usd'])} + GPU runs {_usd(t['gpu_usd'])} = {_usd(t['recorded_usd'])} recorded"]
    for phase, usd in t["gpu_usd_by_phase"].items():
        lines.append(f"    {phase}: {_usd(usd)}")
    if r["azure"]:
        a = r["azure"]
        lines += ["", f"Azure bill ({a['file']}: {a['n_items']} usage details, {a['first_day']} .. {a['last_day']}, {a['currency']})",
                  f"  total {_usd(a['total'])}: " + ", ".join(f"{k} {_usd(v)}" for k, v in a["by_category"].items()),
                  "  by resource group: " + ", ".join(f"{k} {_usd(v)}" for k, v in a["by_resource_group"].items()),
                  f"  bill - recorded GPU runs = {_usd(a['minus_recorded_gpu_usd'])} (provisioning, setup, idle VMs, disks, storage, traffic, runs elsewhere)"]
    if r["sky"] is not None:
        s = r["sky"]
        lines += ["", f"SkyPilot cost report: {len(s['clusters'])} cluster(s), {_usd(s['total_usd'])}"]
        lines += [f"  {c['name']}: {c['num_nodes']} x {c['accelerators']} on {c['cloud']}, {float(c['duration_s'] or 0) / 3600:.2f} h, {_usd(c['total_cost'])}"
                  for c in s["clusters"]]
    lines += ["", "the plan's budget",
              f"  credit {_usd(p['credit_usd'])} - counted {_usd(p['counted_usd'])} = {_usd(p['remaining_credit_usd'])} remaining"
              + (" (OVER BUDGET)" if p["remaining_credit_usd"] < 0 else ""),
              f"  phase 3 ({PHASE3}): {_usd(p['phase3_recorded_usd'])} recorded vs the plan's {_usd(p['phase3_usd'])}"]
    return "\n".join(lines)
