"""Per-source filters in a real datatrove pipeline: expressions on real columns (nested and
JSON-string), datatrove heuristic filters with spec params, and every removal on record."""

import json
import random

import duckdb
import pytest
from curate_helpers import doc, random_text, read_docs, run_local, write_docs
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from tokenizers import Tokenizer

from datakit.curate import build_filter_steps, duckdb_views_sql, load_removed, load_step_stats, parse_filters
from datakit.curate.stats import callouts, format_step_table
from datakit.errors import UserError


def web_docs(n=40):
    rng = random.Random(1)
    docs = []
    for i in range(n):
        score = round(1 + 4 * i / n, 2)  # 1.0 .. 4.9: upstream fineweb-edu-dedup nests it
        text = random_text(rng, 120) if i % 10 else "too short"
        docs.append(doc("web", i, text, metadata={"score": score}, int_score=int(score)))
    return docs


def math_docs(n=20):
    rng = random.Random(2)
    # finemath's `metadata` column is a JSON string
    return [doc("math", i, random_text(rng, 80), metadata=json.dumps({"score": i / 4, "warc": f"w{i}"}))
            for i in range(n)]


def run_filters(tmp_path, source, docs, entries, tokenizer_path, columns):
    inp = tmp_path / "in" / source
    write_docs(inp, docs)
    specs = parse_filters(entries, file="mix.toml", source=source)
    steps = build_filter_steps(specs, source=source, file="mix.toml", columns=columns,
                               records_dir=tmp_path / "records", tokenizer_path=tokenizer_path)
    run_local([JsonlReader(str(inp)), *steps, JsonlWriter(str(tmp_path / "out" / source))], tmp_path / source)
    return read_docs(tmp_path / "out" / source)


def test_expressions_on_nested_and_top_level_columns(tmp_path, tiny_tokenizer):
    docs = web_docs()
    kept = run_filters(tmp_path, "web", docs, ["metadata.score >= 3", "int_score != 4"], tiny_tokenizer,
                       columns={"text", "id", "metadata", "int_score"})
    expect = [d["id"] for d in docs if d["metadata"]["metadata"]["score"] >= 3 and d["metadata"]["int_score"] != 4]
    assert [d["id"] for d in kept] == expect and expect

    removed = load_removed(tmp_path / "records")
    assert len(removed) == len(docs) - len(expect)
    r0 = next(r for r in removed if r["id"] == "web/00000")
    assert r0["step"] == "metadata.score >= 3" and r0["reason"] == "false" and r0["detail"] == "metadata.score=1.0"
    tok = Tokenizer.from_file(tiny_tokenizer)
    assert r0["n_tokens"] == len(tok.encode(docs[0]["text"], add_special_tokens=False).ids) > 0
    assert r0["n_chars"] == len(docs[0]["text"])

    steps = load_step_stats(tmp_path / "records")
    assert [s["step"] for s in steps] == ["metadata.score >= 3", "int_score != 4"]
    first, second = steps
    assert first["docs_out"] == second["docs_in"] and second["docs_out"] == len(expect)
    removed_tokens = sum(r["n_tokens"] for r in removed if r["step"] == first["step"])
    assert first["tokens_in"] - first["tokens_out"] == removed_tokens
    assert "web" in format_step_table(steps)


def test_expression_through_json_string_column(tmp_path, tiny_tokenizer):
    docs = math_docs()
    kept = run_filters(tmp_path, "math", docs, ["metadata.score > 2.5", 'metadata.warc != "w19"'], None,
                       columns={"text", "id", "metadata"})
    assert [d["id"] for d in kept] == [f"math/{i:05d}" for i in range(11, 19)]
    assert load_step_stats(tmp_path / "records")[0]["tokens_in"] is None  # no tokenizer: no token counts


def test_missing_column_is_refused_before_processing(tmp_path):
    specs = parse_filters(["language_score >= 0.9"], file="mix.toml", source="web")
    with pytest.raises(UserError) as e:
        build_filter_steps(specs, source="web", file="mix.toml", columns={"text", "id", "metadata"},
                           records_dir=tmp_path, tokenizer_path=None)
    assert e.value.field == "source.web.filters[0]" and "language_score" in e.value.what
    assert "metadata" in e.value.fix and "text" in e.value.fix
    specs = parse_filters(["metadata.scor >= 3"], file="mix.toml", source="web")
    with pytest.raises(UserError) as e:  # nested typo caught with a sample record
        build_filter_steps(specs, source="web", file="mix.toml", columns={"text", "metadata"},
                           records_dir=tmp_path, tokenizer_path=None, sample={"text": "x", "metadata": {"score": 3}})
    assert "metadata.scor" in e.value.what


def test_datatrove_heuristics_with_params_and_callouts(tmp_path, tiny_tokenizer):
    docs = web_docs()
    entries = ["metadata.score > 0.7",  # the seed's filter: keeps everything on this data
               {"name": "gopher_quality", "min_doc_words": 50},
               "gopher_repetition", "fineweb_quality", "c4_quality"]
    kept = run_filters(tmp_path, "web", docs, entries, tiny_tokenizer, columns={"text", "metadata", "int_score"})
    removed = load_removed(tmp_path / "records")
    short = [r for r in removed if r["id"].endswith("00010")]
    assert short and short[0]["step"] == "gopher_quality(min_doc_words=50)" and short[0]["reason"] == "gopher_short_doc"
    assert len(kept) + len(removed) == len(docs)
    steps = load_step_stats(tmp_path / "records")
    assert steps[0]["kept_docs_frac"] == 1.0
    notes = callouts(steps)
    assert any("metadata.score > 0.7" in n and "barely filters" in n for n in notes)

    con = duckdb.connect()
    con.execute(duckdb_views_sql(tmp_path / "records"))
    by_step = dict(con.execute("select step, count(*) from curation_removed group by 1").fetchall())
    assert sum(by_step.values()) == len(removed)
    (docs_in,) = con.execute("select docs_in from curation_steps where \"order\" = 0").fetchone()
    assert docs_in == len(docs)


def test_rerun_rewrites_records_without_duplicates(tmp_path):
    docs = web_docs()
    for _ in range(2):
        inp = tmp_path / "in"
        write_docs(inp, docs)
        steps = build_filter_steps(parse_filters(["metadata.score >= 3"], file="m", source="web"), source="web",
                                   file="m", columns=None, records_dir=tmp_path / "records", tokenizer_path=None)
        run_local([JsonlReader(str(inp)), *steps], tmp_path / "fresh", tasks=1)
        import shutil
        shutil.rmtree(tmp_path / "fresh")  # force the task to run again
    assert len(load_removed(tmp_path / "records")) == sum(d["metadata"]["metadata"]["score"] < 3 for d in docs)


def test_kept_fractions_chain_steps(tmp_path):
    from datakit.curate.stats import kept_fractions

    docs = web_docs()
    run_filters(tmp_path, "web", docs, ["metadata.score >= 2", "metadata.score >= 4"], None, columns=None)
    f = kept_fractions(load_step_stats(tmp_path / "records"))
    expect = sum(d["metadata"]["metadata"]["score"] >= 4 for d in docs) / len(docs)
    assert f["web"]["docs"] == pytest.approx(expect) and f["web"]["tokens"] is None


def test_language_filter_needs_a_real_local_model(tmp_path):
    specs = parse_filters([{"name": "language", "languages": ["en"], "model_path": str(tmp_path / "lid.176.bin")}],
                          file="m", source="web")
    with pytest.raises(UserError) as e:  # missing package or missing model file: either way a clear error
        build_filter_steps(specs, source="web", file="m", columns=None, records_dir=tmp_path, tokenizer_path=None)
    assert e.value.field == "source.web.filters[0]"
