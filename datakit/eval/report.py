"""`titan eval-report outputs/`: one table and one chart across phases from their `<run>/eval/<step>.json`.

Per phase (the newest step each run evaluated, ordered by that step's time): held-out loss per source,
benchmarks (with n and a 95% interval, chance level and published anchors beside), verified planning
accuracy (valid, optimal, format errors, pass@k) and the long-context probes. A number whose interval
holds chance is marked `~chance`: on a tiny model (the demo's) that is every benchmark, and the
report says so rather than pretending otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

from datakit.errors import UserError
from datakit.eval.benchmarks import ANCHORS, CHANCE, HEADLINE

REPORT_MD, REPORT_PNG = "eval_report.md", "eval_report.png"


def find_results(root: str | Path) -> list[dict]:
    """The newest eval result of each run under `root` (`*/eval/*.json`, or `root/eval/*.json`), oldest first."""
    root = Path(root)
    if not root.exists():
        raise UserError("folder does not exist", file=root, fix="pass the folder that holds the runs, e.g. outputs/")
    files = sorted(set(root.glob("eval/*.json")) | set(root.glob("*/eval/*.json")) | set(root.glob("*/*/eval/*.json")))
    latest: dict[str, dict] = {}
    for f in files:
        try:
            r = json.loads(f.read_text())
        except ValueError:
            continue
        if r.get("format") != "datakit.eval/1":
            continue
        r["_file"] = str(f)
        key = r["model"]["source"]
        old = latest.get(key)
        if old is None or (r["model"].get("step") or 0, r["created"]) > (old["model"].get("step") or 0, old["created"]):
            latest[key] = r
    if not latest:
        raise UserError("no eval results (<run>/eval/<step>.json) under this folder", file=root,
                        fix="run `titan eval <run> --suite core` first")
    return sorted(latest.values(), key=lambda r: r["created"])


def _name(r: dict) -> str:
    return f"{r.get('phase') or Path(r['model']['source']).name}@{r['model'].get('step') if r['model'].get('step') is not None else 'export'}"


def _pct(m: dict | None, chance: float | None = None) -> str:
    if not m or m.get("value", m.get("rate")) is None:
        return "-"
    v = m.get("value", m.get("rate"))
    ci = m.get("ci95")
    near = chance is not None and ci and ci[0] <= chance <= ci[1]
    below = chance is not None and ci and ci[1] < chance
    mark = " ~chance" if near else " <chance" if below else ""
    return f"{100 * v:.1f} [{100 * ci[0]:.0f}-{100 * ci[1]:.0f}] n={m['n']}" + mark if ci else f"{100 * v:.1f}"


def rows(results: list[dict]) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows, notes) of the report table."""
    header = ["metric", *(_name(r) for r in results)]
    out: list[list[str]] = []
    notes: list[str] = []

    def add(label: str, cells: list[str]) -> None:
        if any(c != "-" for c in cells):
            out.append([label, *cells])

    # held-out loss
    add("held-out loss, all (95% CI)", [_loss((r.get("heldout") or {}).get("all")) for r in results])
    sources = sorted({s for r in results for s in ((r.get("heldout") or {}).get("sources") or {})})
    for s in sources:
        add(f"  {s}", [_loss(((r.get("heldout") or {}).get("sources") or {}).get(s)) for r in results])
    # benchmarks
    tasks = [t for t in CHANCE if any(t in ((r.get("benchmarks") or {}).get("tasks") or {}) for r in results)]
    near_all, below = True, set()
    for t in tasks:
        cells = []
        for r in results:
            m = (((r.get("benchmarks") or {}).get("tasks") or {}).get(t) or {}).get("metrics", {}).get(HEADLINE[t])
            cells.append(_pct(m, CHANCE[t]))
            if m and m.get("ci95") and m["ci95"][1] < CHANCE[t]:
                below.add(t)
            elif m and m.get("ci95") and not (m["ci95"][0] <= CHANCE[t] <= m["ci95"][1]):
                near_all = False
        add(f"{t} {HEADLINE[t].split(',')[0]} % (chance {100 * CHANCE[t]:.0f})", cells)
    if tasks:
        if near_all:
            notes.append("no benchmark is above chance (every 95% interval holds or lies below its chance level): at this model "
                         "size and training budget the benchmarks cannot tell the phases apart yet (expected for the CPU demo's tiny model)")
        if below:
            embedded = any((r.get("benchmarks") or {}).get("samples_embedded") for r in results)
            notes.append(f"below chance ({', '.join(sorted(below))}): the model is drawn to the wrong answers of these items, e.g. a "
                         "barely trained model prefers short continuations"
                         + (" (in the embedded HellaSwag samples the correct ending is the longest of the four in all 60 items)" if embedded else ""))
        if any((r.get("benchmarks") or {}).get("samples_embedded") for r in results):
            notes.append("benchmarks ran on datakit's embedded samples (a few dozen items per task with the real schemas), "
                         "not the full test sets: pass --tasks-data <local copy> for numbers comparable to the anchors")
        anchors = "; ".join(f"{name} ({how}): " + ", ".join(f"{k} {v}" for k, v in vals.items()) for name, (vals, how) in ANCHORS.items())
        notes.append(f"published anchors (quoted, not measured here): {anchors}")
    # planning
    for key, label in (("valid", "planning valid-plan %"), ("optimal", "planning optimal-plan %"), ("format_error", "planning format-error %")):
        add(label + " (greedy)", [_pct((((r.get("planning") or {}).get("greedy") or {}).get("all") or {}).get(key)) for r in results])
    add("planning pass@k %", [_passk((r.get("planning") or {}).get("pass_at_k")) for r in results])
    cells = sorted({c for r in results for c in (((r.get("planning") or {}).get("greedy") or {})) if c != "all"})
    for c in cells:
        add(f"  valid {c}", [_pct(((((r.get("planning") or {}).get("greedy") or {}).get(c)) or {}).get("valid")) for r in results])
    if any(r.get("planning") for r in results):
        notes.append("planning: held-out procedural problems (seeds >= 2**62, never used for training; checked against the "
                     "training records), answers verified by the domains' own checkers")
    # long context
    buckets = sorted({b for r in results for b in (((r.get("longctx") or {}).get("position_loss") or {}).get("buckets") or {})},
                     key=lambda b: _bucket_start(b))
    for b in buckets:
        add(f"loss at positions {b}", [_bucket((((r.get("longctx") or {}).get("position_loss") or {}).get("buckets") or {}).get(b))
                                       for r in results])
    lengths = sorted({int(k) for r in results for k in ((r.get("longctx") or {}).get("passkey") or {})})
    for n in lengths:
        add(f"passkey retrieval at {n:,} %", [_pct(_as_metric(((r.get("longctx") or {}).get("passkey") or {}).get(str(n)))) for r in results])
    return header, out, notes


def _bucket_start(name: str) -> int:
    first = name.split("-")[0]
    return int(first[:-1]) * 1024 if first.endswith("K") else int(first)


def _as_metric(d: dict | None) -> dict | None:
    return None if d is None else {"rate": d["rate"], "ci95": d["ci95"], "n": d["n"]}


def _loss(s: dict | None) -> str:
    if not s or s.get("loss") is None:
        return "-"
    ci = s.get("ci95")
    return f"{s['loss']:.3f}" + (f" [{ci[0]:.3f}-{ci[1]:.3f}]" if ci else "") + f" ({s['tokens']:,} tok)"


def _bucket(b: dict | None) -> str:
    if not b:
        return "-"
    return f"{b['loss']:.3f} ({b['tokens']:,} tok)" if b["loss"] is not None else "no tokens"


def _passk(p: dict | None) -> str:
    if not p:
        return "-"
    a = p["all"]
    return f"pass@{p['k']} {100 * a['rate']:.1f} [{100 * a['ci95'][0]:.0f}-{100 * a['ci95'][1]:.0f}] n={a['n']}"


def markdown(results: list[dict]) -> str:
    header, body, notes = rows(results)
    lines = ["# Eval report", "", f"{len(results)} evaluated model(s); each column is the newest evaluated step of a run. "
             "Rates are % with a 95% interval (Wilson) and the number of items; losses are nats per token.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    lines += ["", *(f"- {n}" for n in notes), "", "Sources:", *(f"- {_name(r)}: {r['_file']}" for r in results)]
    return "\n".join(lines) + "\n"


def table(results: list[dict]) -> str:
    """The report's table as aligned text (what `titan eval-report` and the demo print)."""
    header, body, notes = rows(results)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in body), *(f"note: {n}" for n in notes)])


def chart(results: list[dict], path: Path) -> Path:
    """Three panels per phase: held-out loss, benchmark headline metrics, planning rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [_name(r) for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    losses = [((r.get("heldout") or {}).get("all") or {}).get("loss") for r in results]
    axes[0].bar(names, [v if v is not None else 0 for v in losses], color="#4c72b0")
    axes[0].set_title("held-out loss (nats/token)")
    tasks = [t for t in CHANCE if any(t in ((r.get("benchmarks") or {}).get("tasks") or {}) for r in results)]
    width = 0.8 / max(1, len(results))
    for i, r in enumerate(results):
        vals = [100 * ((((r.get("benchmarks") or {}).get("tasks") or {}).get(t) or {}).get("metrics", {}).get(HEADLINE[t], {}).get("value", 0))
                for t in tasks]
        axes[1].bar([k + i * width for k in range(len(tasks))], vals, width, label=names[i])
    for k, t in enumerate(tasks):
        axes[1].hlines(100 * CHANCE[t], k - width / 2, k + width * len(results), colors="grey", linestyles="dashed")
    axes[1].set_xticks(range(len(tasks)), tasks, rotation=15)
    axes[1].set_title("benchmarks % (dashed: chance)")
    keys = ["valid", "optimal", "format_error"]
    for i, r in enumerate(results):
        g = ((r.get("planning") or {}).get("greedy") or {}).get("all") or {}
        axes[2].bar([k + i * width for k in range(len(keys))], [100 * ((g.get(k) or {}).get("rate") or 0) for k in keys], width, label=names[i])
    axes[2].set_xticks(range(len(keys)), keys)
    axes[2].set_title("planning, greedy %")
    for ax in axes[1:]:
        ax.legend(fontsize=7)
    for lab in axes[0].get_xticklabels():
        lab.set_rotation(15)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(root: str | Path, out: Path | None = None) -> tuple[Path, Path, list[dict]]:
    results = find_results(root)
    out = Path(out) if out else Path(root)
    out.mkdir(parents=True, exist_ok=True)
    md = out / REPORT_MD
    md.write_text(markdown(results) + f"\n![chart]({REPORT_PNG})\n")
    png = chart(results, out / REPORT_PNG)
    return md, png, results
