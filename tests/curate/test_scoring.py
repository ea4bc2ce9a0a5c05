"""Quality scoring with a FineWeb-Edu-format classifier (a tiny random BERT regression model the
test builds and saves), feeding an `int_score` filter in the same list."""

import random

import pytest
from curate_helpers import VOCAB, doc, random_text, read_docs, run_local, write_docs

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from datatrove.pipeline.readers import JsonlReader  # noqa: E402
from datatrove.pipeline.writers import JsonlWriter  # noqa: E402

from datakit.curate import build_filter_steps, load_removed, load_step_stats, parse_filters  # noqa: E402
from datakit.errors import UserError  # noqa: E402


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    path = tmp_path_factory.mktemp("clf")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *VOCAB[:2000], "."]
    tok = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=256, num_labels=1,
                                  problem_type="regression")
    model = transformers.BertForSequenceClassification(cfg).eval()
    rng = random.Random(99)
    calib = tok([random_text(rng, 60) for _ in range(32)], return_tensors="pt", padding=True)
    with torch.no_grad():  # rescale the random head so outputs spread over the 0..5 scale
        raw = model(**calib).logits.squeeze(-1)
        k = 2.0 / raw.std()
        model.classifier.weight.mul_(k)
        model.classifier.bias.copy_(2.5 - k * (raw.mean() - model.classifier.bias))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_scores_written_and_filtered(tmp_path, tiny_classifier):
    rng = random.Random(5)
    docs = [doc("web", i, random_text(rng, 60)) for i in range(24)]
    write_docs(tmp_path / "in", docs)
    specs = parse_filters([{"name": "quality_score", "model": str(tiny_classifier), "batch_size": 5,
                            "max_length": 64}, "int_score >= 3"], file="mix.toml", source="web")
    steps = build_filter_steps(specs, source="web", file="mix.toml", columns={"text", "id", "metadata"},
                               records_dir=tmp_path / "records", tokenizer_path=None)
    run_local([JsonlReader(str(tmp_path / "in")), steps[0], JsonlWriter(str(tmp_path / "scored")), steps[1],
               JsonlWriter(str(tmp_path / "out"))], tmp_path)

    scored = read_docs(tmp_path / "scored")
    # reference: the same model run directly
    tok = transformers.AutoTokenizer.from_pretrained(tiny_classifier)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(tiny_classifier).eval()
    with torch.no_grad():
        ref = model(**tok([d["text"] for d in docs], return_tensors="pt", padding="longest", truncation=True,
                          max_length=64)).logits.squeeze(-1).tolist()
    got = [d["metadata"]["score"] for d in scored]
    assert got == pytest.approx(ref, abs=2e-3)  # padding differs between batch sizes
    ints = [d["metadata"]["int_score"] for d in scored]
    assert ints == [int(round(max(0, min(s, 5)))) for s in got]
    assert len(set(ints)) >= 3  # the test model spreads documents over the scale

    kept = read_docs(tmp_path / "out")
    assert [d["id"] for d in kept] == [d["id"] for d in scored if d["metadata"]["int_score"] >= 3]
    assert {r["id"] for r in load_removed(tmp_path / "records")} == {
        d["id"] for d in scored if d["metadata"]["int_score"] < 3}
    assert [s["step"] for s in load_step_stats(tmp_path / "records")][0].startswith("quality_score")


def test_missing_model_folder_is_a_user_error(tmp_path):
    specs = parse_filters([{"name": "quality_score", "model": str(tmp_path / "nope")}], file="mix.toml", source="web")
    with pytest.raises(UserError) as e:
        build_filter_steps(specs, source="web", file="mix.toml", columns=None, records_dir=tmp_path,
                           tokenizer_path=None)
    assert "fineweb-edu-classifier" in e.value.fix
