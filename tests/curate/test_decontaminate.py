"""Decontamination against local eval files in their upstream schemas: planted test items
(verbatim and lightly edited) are all caught and named; a clean corpus loses nothing; a file that
cannot be read or has the wrong schema stops the run before any processing."""

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curate_helpers import doc, random_text, read_docs, write_docs

from datakit.curate import CurateSpec, load_removed, run_curation
from datakit.errors import UserError

AGAINST = ["gsm8k:test", "ai2_arc:ARC-Challenge:test", "apps:test"]


def edit(text: str, positions=(10, 40)) -> str:
    words = text.split(" ")
    for p in positions:
        if p < len(words):
            words[p] = "zzedited"
    return " ".join(words)


@pytest.fixture(scope="module")
def evals(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evals")
    rng = random.Random(11)
    gsm = [{"question": random_text(rng, 40), "answer": random_text(rng, 30) + "\n#### 42"} for _ in range(20)]
    arc = [{"id": f"Mercury_{i}", "question": random_text(rng, 25),
            "choices": {"text": [random_text(rng, 4) for _ in range(4)], "label": ["A", "B", "C", "D"]},
            "answerKey": "A"} for i in range(20)]
    apps = [{"problem_id": 4000 + i, "question": random_text(rng, 60), "solutions": "[]", "input_output": "{}",
             "difficulty": "interview", "url": "", "starter_code": ""} for i in range(20)]
    (tmp / "gsm8k_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gsm))
    pq.write_table(pa.Table.from_pylist(arc), tmp / "arc_challenge_test.parquet")
    (tmp / "apps_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in apps))
    files = {"gsm8k:test": str(tmp / "gsm8k_test.jsonl"),
             "ai2_arc:ARC-Challenge:test": str(tmp / "arc_challenge_test.parquet"),
             "apps:test": str(tmp / "apps_test.jsonl")}
    return tmp, files, gsm, arc, apps


def spec_for(files, ngram=13):
    return CurateSpec.from_toml({"decontaminate": {"against": AGAINST, "ngram": ngram, "files": files}}, file="mix.toml")


def run(tmp, spec, docs_by_source, name):
    for s, ds in docs_by_source.items():
        write_docs(tmp / name / "in" / s, ds)
    return run_curation(spec, inputs={s: tmp / name / "in" / s for s in docs_by_source},
                        outputs={s: tmp / name / "out" / s for s in docs_by_source}, work_dir=tmp / name / "work",
                        records_dir=tmp / name / "records", tokenizer_path=None, workers=1, seed=0, file="mix.toml")


def test_planted_items_are_all_caught_and_named(evals, tiny_tokenizer):
    tmp, files, gsm, arc, apps = evals
    rng = random.Random(12)
    clean = [doc("web", i, random_text(rng, 200)) for i in range(60)]
    planted, expected = [], {}

    def plant(text, item):
        d = doc("math", len(planted), random_text(rng, 50) + " " + text + " " + random_text(rng, 50))
        planted.append(d)
        expected[d["id"]] = item

    for i in range(0, 20, 2):
        plant(gsm[i]["question"] + "\n" + gsm[i]["answer"], f"gsm8k:test#{i}")  # verbatim
        plant(edit(gsm[i + 1]["question"].upper()), f"gsm8k:test#{i + 1}")  # edited, shouted
        plant(arc[i]["question"] + " " + " ".join(arc[i]["choices"]["text"]), f"ai2_arc:ARC-Challenge:test#Mercury_{i}")
        plant(edit(apps[i]["question"]), f"apps:test#{4000 + i}")
    spec = spec_for(files)
    summary = run(tmp, spec.model_copy(), {"web": clean, "math": planted}, "planted")
    removed = {r["id"]: r for r in load_removed(tmp / "planted" / "records")}
    assert set(removed) == set(expected)  # every planted doc caught, no clean doc lost
    for doc_id, item in expected.items():
        assert removed[doc_id]["reason"] == "contaminated"
        assert removed[doc_id]["detail"].startswith(item + ": ")
    assert read_docs(tmp / "planted" / "out" / "web") == [
        {**d, "metadata": d["metadata"]} for d in read_docs(tmp / "planted" / "in" / "web")]
    rep = summary["decontamination"]
    assert rep["gsm8k:test"]["items"] == 20 and rep["gsm8k:test"]["items_hit"] == 20
    assert rep["gsm8k:test"]["docs_removed"] == 20 and rep["apps:test"]["items_hit"] == 10
    assert rep["ai2_arc:ARC-Challenge:test"]["examples"][0]["item"].startswith("ai2_arc:ARC-Challenge:test#")


def test_clean_corpus_loses_nothing(evals):
    tmp, files, *_ = evals
    rng = random.Random(13)
    clean = [doc("web", i, random_text(rng, 200)) for i in range(80)]
    summary = run(tmp, spec_for(files), {"web": clean}, "clean")
    assert load_removed(tmp / "clean" / "records") == []
    assert len(read_docs(tmp / "clean" / "out" / "web")) == 80
    assert summary["sources"]["web"] == {"docs_in": 80, "docs_out": 80, "tokens_in": None, "tokens_out": None}


def test_wrong_schema_or_missing_file_fails_before_processing(evals):
    tmp, files, _, arc, _ = evals
    bad = tmp / "arc_bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "question": "q"}) + "\n")  # no choices
    with pytest.raises(UserError) as e:
        run(tmp, spec_for({**files, "ai2_arc:ARC-Challenge:test": str(bad)}), {"web": [doc("web", 0, "x")]}, "bad")
    assert "wrong schema" in e.value.what and "choices" in e.value.what
    assert e.value.field == 'curate.decontaminate.files."ai2_arc:ARC-Challenge:test"'
    assert not (tmp / "bad" / "out").exists()
    with pytest.raises(UserError) as e:
        run(tmp, spec_for({**files, "apps:test": str(tmp / "nope.jsonl")}), {"web": [doc("web", 0, "x")]}, "bad2")
    assert "does not exist" in e.value.what


def test_eval_set_without_file_or_cache_is_a_user_error(evals, monkeypatch, tmp_path):
    tmp, files, *_ = evals
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty_hf_home" / "datasets"))
    only = {k: v for k, v in files.items() if k != "apps:test"}
    with pytest.raises(UserError) as e:
        run(tmp, spec_for(only), {"web": [doc("web", 0, "x")]}, "nocache")
    assert "not in the local datasets cache" in e.value.what and "apps:test" in e.value.fix


def test_hellaswag_validation_is_an_eval_set_in_its_upstream_schema(tmp_path):
    """The eval issue's fourth set: a training document copying a HellaSwag context + ending is removed."""
    from datakit.curate.evalsets import load_eval_set
    from datakit.samples import SAMPLES

    (path,) = SAMPLES["hellaswag"].files("validation")
    items = load_eval_set("hellaswag:validation", {"hellaswag:validation": str(path)}, file="mix.toml")
    rows = pq.read_table(path).to_pylist()
    assert len(items) == len(rows) and items[0].item_id == str(rows[0]["ind"])
    assert items[0].text.startswith(rows[0]["ctx"]) and rows[0]["endings"][1] in items[0].text
    rng = random.Random(5)
    leaked = random_text(rng, 20) + " " + items[3].text.replace("\n", " ") + " " + random_text(rng, 20)
    docs = [doc("web", i, random_text(rng, 80)) for i in range(10)] + [doc("web", 10, leaked)]
    spec = CurateSpec.from_toml({"decontaminate": {"against": ["hellaswag:validation"], "ngram": 8,
                                                   "files": {"hellaswag:validation": str(path)}}}, file="mix.toml")
    run(tmp_path, spec, {"web": docs}, "hs")
    assert len(read_docs(tmp_path / "hs" / "out" / "web")) == 10
    (removed,) = [r for r in load_removed(tmp_path / "hs" / "records") if r["step"] == "decontaminate"]
    assert removed["detail"].startswith("hellaswag:validation#")  # templated samples share n-grams: any item may be named
