"""Formatters render real upstream-schema records (the embedded samples) to training text."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from datakit.errors import UserError
from datakit.samples import SAMPLES
from datakit.sources.formatters import (
    FORMATTERS,
    EmptyTextError,
    check_columns,
    get_formatter,
    json_column,
    split_gsm8k_answer,
)


def _rows(sample: str, split: str | None = None) -> list[dict]:
    f = SAMPLES[sample].files(split or SAMPLES[sample].splits[0])[0]
    if f.suffix == ".jsonl":
        return [json.loads(line) for line in f.read_text().splitlines()]
    return pq.read_table(f).to_pylist()


@pytest.mark.parametrize("sample", [s for s in SAMPLES if not SAMPLES[s].needs_hydration])
def test_every_sample_renders_with_its_formatter(sample):
    fmt = get_formatter(SAMPLES[sample].format)
    rows = _rows(sample)
    check_columns(fmt, set(rows[0]), file="spec.toml", source=sample)
    texts = [fmt.render(r) for r in rows]
    assert all(t.strip() for t in texts)
    assert len(set(texts)) > len(texts) * 0.9  # records are not collapsed into the same text


def test_gsm8k_keeps_reasoning_and_states_the_final_answer():
    rec = {
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
    }
    text = get_formatter("gsm8k").render(rec)
    assert text.startswith("Question: Natalia sold clips")
    assert "Natalia sold 48/2 = 24 clips in May." in text  # calculator annotations removed, reasoning kept
    assert "<<" not in text and "####" not in text
    assert text.endswith("Final answer: 72")
    assert split_gsm8k_answer("a\n#### 1,234") == ("a", "1234")
    for r in _rows("gsm8k", "test"):
        final = r["answer"].rsplit("#### ", 1)[1]
        assert get_formatter("gsm8k").render(r).endswith(f"Final answer: {final}")


def test_apps_renders_first_solution_and_survives_empty_solutions():
    fmt = get_formatter("apps")
    rows = _rows("apps")
    with_sol = next(r for r in rows if r["solutions"] and not r["starter_code"])
    text = fmt.render(with_sol)
    assert text.startswith("Problem:\n")
    assert json.loads(with_sol["solutions"])[0].rstrip() in text

    empty = next(r for r in rows if r["solutions"] == "")
    text = fmt.render(empty)
    assert "Solution:" not in text and empty["question"].strip() in text
    assert "Solution:" not in fmt.render({**empty, "solutions": "[]"})
    assert "Solution:" not in fmt.render({**empty, "solutions": "not json"})
    assert "Solution:" not in fmt.render({**empty, "solutions": None})

    starter = next(r for r in rows if r["starter_code"] and r["solutions"])
    text = fmt.render(starter)
    assert "Starter code:\n```python\nclass Solution:" in text and "Solution:\n```python" in text


def test_arc_lists_labelled_choices_and_the_answer():
    rec = {
        "id": "Mercury_7175875",
        "question": "An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?",
        "choices": {"text": ["Planetary density will decrease.", "Planetary years will become longer.",
                             "Planetary days will become shorter.", "Planetary gravity will become stronger."],
                    "label": ["A", "B", "C", "D"]},
        "answerKey": "C",
    }
    text = get_formatter("arc").render(rec)
    assert "\nA. Planetary density will decrease.\n" in text
    assert text.endswith("Answer: C. Planetary days will become shorter.")
    numeric = next(r for r in _rows("arc-easy") if r["choices"]["label"][0] == "1")
    assert f"Answer: {numeric['answerKey']}. " in get_formatter("arc").render(numeric)


def test_planning_renders_contract_3_tags():
    rec = _rows("planning")[0]
    text = get_formatter("planning").render(rec)
    assert text == f"<problem>{rec['problem']}</problem><thinking>{rec['thinking']}</thinking><answer>{rec['answer']}</answer>"


def test_code_formatter_adds_a_header_and_needs_hydrated_text():
    fmt = get_formatter("code")
    text = fmt.render({"blob_id": "x", "repo_name": "python/cpython", "path": "Lib/this.py", "text": "print('hi')\n"})
    assert text == "# repo: python/cpython\n# path: Lib/this.py\nprint('hi')\n"
    c = fmt.render({"language": "C", "repo_name": "r", "path": "a.c", "text": "int x;"})
    assert c.startswith("// repo: r\n// path: a.c\n")
    row = _rows("python-edu")[0]  # blob ids only: without hydration there is no text
    with pytest.raises(UserError) as e:
        check_columns(fmt, set(row), file="mix.toml", source="python-edu")
    assert e.value.field == "source.python-edu.format" and "'text'" in e.value.what and "hydrat" in e.value.fix
    with pytest.raises(UserError, match="no column 'text'"):
        fmt.render(row, file="mix.toml", source="python-edu")


def test_unknown_formatter_lists_the_known_ones():
    with pytest.raises(UserError) as e:
        get_formatter("gsm9k", file="mix.toml", source="gsm8k")
    assert e.value.file == "mix.toml" and e.value.field == "source.gsm8k.format"
    assert "gsm8k" in e.value.fix and "planning" in e.value.fix
    assert str(e.value).startswith("mix.toml: source.gsm8k.format: unknown formatter 'gsm9k'")


def test_missing_column_and_empty_text_are_user_errors():
    with pytest.raises(UserError) as e:
        check_columns(FORMATTERS["gsm8k"], {"question", "solution"}, file="f.toml", source="s")
    assert "'answer'" in e.value.what and e.value.file == "f.toml"
    with pytest.raises(EmptyTextError) as e:
        FORMATTERS["text"].render({"text": "   "}, file="f.toml", source="s")
    assert isinstance(e.value, UserError) and e.value.field == "source.s.format"
    with pytest.raises(EmptyTextError):
        FORMATTERS["gsm8k"].render({"question": None, "answer": "#### 3"})


def test_json_column_reads_structs_and_json_strings_alike():
    fw = _rows("fineweb-edu-dedup")[0]
    fm = _rows("finemath-4plus")[0]
    assert json_column(fw, "metadata.score") == fw["metadata"]["score"]  # nested struct
    assert isinstance(fm["metadata"], str)
    assert json_column(fm, "metadata.score") == json.loads(fm["metadata"])["score"]  # JSON string column
    assert json_column(fm, "metadata.extraction.math_blocks") >= 0  # nested inside the JSON string
    arc = _rows("arc-challenge")[0]
    assert json_column(arc, "choices.label.0") == arc["choices"]["label"][0]
    assert json_column({"a.b": 1, "a": {"b": 2}}, "a.b") == 1  # a literal dotted column wins
    assert json_column({"m": {"x.y": 3}}, "m.x.y") == 3
    assert json_column(fw, "metadata.nope", default=None) is None
    assert json_column({"m": "plain string"}, "m.x", default="d") == "d"
    with pytest.raises(KeyError, match="nope"):
        json_column(fw, "metadata.nope")


def test_boolq_renders_passage_question_and_yes_no():
    fmt = get_formatter("boolq")
    text = fmt.render({"question": "is the sky blue", "answer": True, "passage": "The sky looks blue by day."})
    assert text == "Passage: The sky looks blue by day.\n\nQuestion: Is the sky blue?\n\nAnswer: Yes"
    rows = _rows("boolq")
    assert {fmt.render(r).rsplit("Answer: ", 1)[1] for r in rows} == {"Yes", "No"}
    assert all(fmt.render(r).endswith("Yes" if r["answer"] else "No") for r in rows)


def test_math_dataset_unwraps_the_hubs_bytes_literals():
    fmt = get_formatter("math-dataset")
    row = _rows("math-arithmetic-mixed")[0]
    assert row["question"].startswith("b'") and row["question"].endswith("\\n'")  # as the hub stores it
    text = fmt.render(row)
    assert text.startswith("Question: Evaluate (") and "b'" not in text and "\\n" not in text
    assert fmt.render({"question": "Solve 2*x = 4 for x.", "answer": "2"}) == "Question: Solve 2*x = 4 for x.\n\nAnswer: 2"
    q, a = text.removeprefix("Question: Evaluate ").split("\n\nAnswer: ")
    assert eval(q.rstrip(".")) == int(a)  # the sample's arithmetic is right


def test_chat_puts_think_traces_in_the_models_planning_tags():
    fmt = get_formatter("chat")
    row = _rows("smoltalk2-mid")[0]
    text = fmt.render(row)
    assert text.startswith("<problem>A floor is") and "<thinking>The floor is a rectangle" in text
    assert text.endswith("</answer>") and "<think>" not in text
    plain = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]}
    assert fmt.render(plain) == "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello.\n\nUser: Bye"


def test_hellaswag_renders_the_context_with_its_right_ending():
    row = _rows("hellaswag")[0]
    assert get_formatter("hellaswag").render(row) == f"{row['ctx']} {row['endings'][int(row['label'])]}"
