"""`datakit synth status`: spend, records, rejects by reason, tokens and dollars per 1M tokens of a folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from datakit.errors import UserError
from datakit.spec.sizes import human
from datakit.synth.ledger import LEDGER_FILE, Ledger
from datakit.synth.money import usd
from datakit.synth.store import OutputFolder
from datakit.synth.validate import render

DEFAULT_TOKENIZER = Path("tokenizers/datakit-65k/tokenizer.json")


def synth_status(out: str | Path, tokenizer: str | Path | None = None) -> dict:
    """Read a synth output folder. tokenizer: tokenizer.json used to count record tokens (our tokenizer);
    without one (and without tokenizers/datakit-65k), provider-reported tokens are shown instead."""
    folder = OutputFolder(out)
    if not folder.out.is_dir():
        raise UserError("no such output folder", file=str(out), fix="pass the --out folder of a synth run")
    records = list(folder.records())
    rejects = Counter(r.get("reason", "?") for r in folder.rejects())
    by_provider = Counter(r.get("meta", {}).get("provider", "?") for r in records)
    tok_path = Path(tokenizer) if tokenizer else (DEFAULT_TOKENIZER if DEFAULT_TOKENIZER.exists() else None)
    if tok_path is not None:
        if not tok_path.exists():
            raise UserError("tokenizer not found", file=str(tok_path), fix="pass --tokenizer tokenizers/datakit-65k/tokenizer.json")
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tok_path))
        n_tokens = sum(len(e.ids) for e in tok.encode_batch([render(r) for r in records])) if records else 0
        token_source = f"tokenizer {tok_path}"
    else:
        n_tokens = sum(int(r.get("meta", {}).get("n_completion_tokens", 0)) for r in records)
        token_source = "provider completion tokens (no tokenizer found)"
    report = {
        "out": str(folder.out),
        "n_records": len(records),
        "n_ids_unique": len({r["id"] for r in records}),
        "records_by_provider": dict(by_provider),
        "rejects_by_reason": dict(rejects),
        "n_rejects": sum(rejects.values()),
        "n_tokens": n_tokens,
        "token_source": token_source,
        "record_cost_usd": sum(float(r.get("meta", {}).get("cost_usd", 0)) for r in records),
    }
    if (folder.out / LEDGER_FILE).exists():
        t = Ledger(folder.out, None).totals()
        report |= {
            "spent_usd": t.spent_usd,
            "reserved_usd": t.reserved_usd,
            "budget_usd": t.budget_usd,
            "n_calls": t.n_calls_settled + t.n_calls_orphaned,
            "n_calls_not_billed": t.n_calls_released,
            "n_calls_orphaned": t.n_calls_orphaned,
        }
    else:
        report |= {"spent_usd": 0.0, "reserved_usd": 0.0, "budget_usd": None, "n_calls": 0, "n_calls_not_billed": 0, "n_calls_orphaned": 0}
    report["usd_per_mtok"] = report["spent_usd"] / n_tokens * 1e6 if n_tokens else None
    return report


def format_status(s: dict) -> str:
    budget = usd(s["budget_usd"])
    lines = [
        f"{s['out']}",
        f"  spend:    {usd(s['spent_usd'])} of {budget} budget ({s['n_calls']} billed calls, {s['n_calls_not_billed']} not billed, "
        f"{s['n_calls_orphaned']} charged at worst case after a crash; ${s['reserved_usd']:,.4f} in flight)",
        f"  records:  {s['n_records']:,} ({', '.join(f'{k}: {v:,}' for k, v in s['records_by_provider'].items()) or 'none'})"
        + ("" if s["n_ids_unique"] == s["n_records"] else f"  WARNING: only {s['n_ids_unique']:,} unique ids"),
        f"  rejects:  {s['n_rejects']:,}" + (f" ({', '.join(f'{k}: {v:,}' for k, v in sorted(s['rejects_by_reason'].items()))})" if s["n_rejects"] else ""),
        f"  tokens:   {human(s['n_tokens'])} ({s['token_source']})",
        "  $/1M tok: " + (f"${s['usd_per_mtok']:,.2f} (all spend, rejects included, / record tokens)" if s["usd_per_mtok"] is not None else "n/a"),
    ]
    return "\n".join(lines)
