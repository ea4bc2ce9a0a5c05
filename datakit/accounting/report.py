"""`datakit tokens report`: the per-source table a person reads, as text, report.md and report.png."""

from __future__ import annotations

from pathlib import Path

from datakit.accounting.db import connect
from datakit.contract import load_manifest
from datakit.contract.accounting import MIXTURE_STEPS
from datakit.spec.sizes import human

SOURCE_SQL = """
select s.name as source, count(d.doc_id) as docs, coalesce(sum(d.tokens), 0) as tokens,
       avg(d.tokens) as mean_len, median(d.tokens) as median_len, s.epochs, s.weight as share,
       s.tokens_target as target, s.tokens_written as written, s.tokens_available as available
from sources s left join docs d on d.source = s.name
group by all order by tokens desc
"""


def _rows(output, sql: str) -> list[dict]:
    con = connect(output)
    try:
        rel = con.execute(sql)
        names = [d[0] for d in rel.description]
        return [dict(zip(names, r)) for r in rel.fetchall()]
    finally:
        con.close()


def _has_table(output, name: str) -> bool:
    return bool(_rows(output, f"select 1 from information_schema.tables where table_name = '{name}'"))


def source_rows(output) -> list[dict]:
    return _rows(output, SOURCE_SQL)


def curation_rows(output) -> list[dict]:
    if not _has_table(output, "curation_steps"):
        return []
    return _rows(
        output,
        "select source, step, sum(docs_in) docs_in, sum(docs_in) - sum(docs_out) docs_removed, sum(docs_out) docs_out, "
        "sum(tokens_in) tokens_in, sum(tokens_in) - sum(tokens_out) tokens_removed, sum(tokens_out) tokens_out "
        "from curation_steps group by source, step order by source, min(\"order\")",
    )


def example_rows(output) -> list[dict]:
    return _rows(
        output,
        "select source, coalesce(role, '') as role, count(*) as examples, sum(context_tokens) as context, "
        "sum(prompt_tokens) as prompt, sum(completion_tokens) as completion, sum(tokens) as tokens "
        "from docs where completion_tokens is not null group by all order by 1, 2",
    )


def format_examples(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    out = ["", "## SFT / DPO examples", "", "| source | role | examples | context tokens | prompt tokens | completion tokens (loss) | total |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['source']} | {r['role'] or '-'} | {r['examples']:,} | {human(r['context'])} | {human(r['prompt'])} | {human(r['completion'])} | {human(r['tokens'])} |")
    return out


def format_table(rows: list[dict]) -> list[str]:
    head = ["source", "docs", "tokens", "mean len", "median len", "epochs", "share", "target", "written"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append(
            f"| {r['source']} | {r['docs']:,} | {human(r['tokens'])} | {(r['mean_len'] or 0):,.0f} | {(r['median_len'] or 0):,.0f} | "
            f"{r['epochs']:.2f} | {r['share']:.1%} | {human(r['target'])} | {human(r['written'])} |"
        )
    total = sum(r["tokens"] for r in rows)
    out.append(f"| **total** | {sum(r['docs'] for r in rows):,} | {human(total)} | | | | 100% | {human(sum(r['target'] for r in rows))} | {human(total)} |")
    return out


def format_curation(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    out = ["", "## Curation", "", "| source | step | docs in | removed | docs out | tokens in | tokens removed | tokens out | kept docs |", "|" + "---|" * 9]
    for r in rows:
        kept = r["docs_out"] / r["docs_in"] if r["docs_in"] else 0.0
        flag = " ⚠" if r["docs_in"] and r["step"] not in MIXTURE_STEPS and (kept > 0.99 or kept < 0.01) else ""
        out.append(
            f"| {r['source']} | {r['step']} | {r['docs_in']:,} | {r['docs_removed']:,} | {r['docs_out']:,} | "
            f"{human(r['tokens_in'] or 0)} | {human(r['tokens_removed'] or 0)} | {human(r['tokens_out'] or 0)} | {kept:.1%}{flag} |"
        )
    out.append("")
    out.append("⚠ = a filter keeping more than 99% or less than 1% of documents: check that it does what you meant.")
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["source"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    ax.barh(names, [r["target"] for r in rows], color="#ddd", label="target")
    ax.barh(names, [r["written"] for r in rows], height=0.5, color="#3b75af", label="written")
    for i, r in enumerate(rows):
        ax.text(r["written"], i, f" {human(r['written'])} ({r['epochs']:.2f} ep)", va="center", fontsize=8)
    ax.set_xlabel("tokens")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def render_report(output) -> str:
    output = Path(output)
    m = load_manifest(output)
    rows = source_rows(output)
    lines = [
        f"# Mixture `{m.name}`",
        "",
        f"{human(m.total_tokens)} tokens in {m.total_docs:,} documents, seq_len {m.seq_len}, seed {m.seed}, "
        f"tokenizer vocab {m.tokenizer.vocab_size:,} (sha256 {m.tokenizer.sha256[:12]}), built {m.created} with datakit {m.datakit_version}.",
        "",
        *format_table(rows),
        "",
        "![tokens per source](report.png)",
        *format_examples(example_rows(output)),
        *format_curation(curation_rows(output)),
    ]
    decon = m.decontamination
    if decon:
        lines += ["", "## Decontamination", "", "| eval set | items | items hit | docs removed | tokens removed |", "|---|---|---|---|---|"]
        for name, d in decon.items():
            lines.append(f"| {name} | {d.get('items', 0):,} | {d.get('items_hit', 0):,} | {d.get('docs_removed', 0):,} | {human(d.get('tokens_removed') or 0)} |")
        examples = [(name, e) for name, d in decon.items() for e in d.get("examples", [])]
        if examples:
            lines += ["", "Examples (training document, eval item, shared n-gram):", ""]
            lines += [f"- `{e['id']}` ({e['source']}) ~ {name} `{e['item']}`: \"{str(e.get('ngram', ''))[:120]}\"" for name, e in examples[:9]]
    reading = [(s.name, s.read_stats) for s in m.sources]
    if any(r.get("missing_blob") or r.get("empty_text") or r.get("sampled_out") for _, r in reading):
        lines += ["", "## Reading", "", "| source | docs read | sampled out | blobs hydrated | blobs missing | empty after formatting |", "|---|---|---|---|---|---|"]
        for name, r in reading:
            lines.append(f"| {name} | {r.get('docs_read', 0):,} | {r.get('sampled_out', 0):,} | {r.get('hydrated', 0):,} | {r.get('missing_blob', 0):,} | {r.get('empty_text', 0):,} |")
        lines.append("")
        lines.append("Missing blobs (`NoSuchKey` in the Software Heritage bucket) are skipped and counted, never written as empty documents.")
    if m.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in m.notes]
    return "\n".join(lines) + "\n"


def write_report(output) -> Path:
    output = Path(output)
    text = render_report(output)
    plot(source_rows(output), output / "report.png")
    (output / "report.md").write_text(text)
    return output / "report.md"
