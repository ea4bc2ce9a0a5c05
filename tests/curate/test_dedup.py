"""Exact and MinHash dedup across all sources: planted near-duplicates are found (recall and
precision >= 0.95), exact duplicates name the kept document, and the result does not depend on
the worker count."""

import random

import pytest
from curate_helpers import doc, edit_words, random_text, read_docs, write_docs
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

from datakit.curate import CurateSpec, load_removed, run_curation
from datakit.curate.minhash import minhash_config

SOURCES = ("web", "math", "code")


def jaccard(a: str, b: str, sig: MinhashDedupSignature) -> float:
    sa, sb = set(sig.get_shingles(a).ravel().tolist()), set(sig.get_shingles(b).ravel().tolist())
    return len(sa & sb) / len(sa | sb)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Base documents in three sources, plus planted near-duplicate pairs (across sources, Jaccard
    >= 0.8), known non-pairs (half shared text, Jaccard < 0.6) and exact duplicates up to case and
    punctuation. Two files per source, so the run has six tasks."""
    tmp = tmp_path_factory.mktemp("dedup")
    rng = random.Random(7)
    spec = CurateSpec.from_toml({"dedup": {"exact": True, "minhash": {"threshold": 0.8}}}, file="m")
    sig = MinhashDedupSignature(str(tmp / "j"), config=minhash_config(spec.dedup.minhash), language="en")
    docs = {s: [] for s in SOURCES}

    def add(source, text):
        d = doc(source, len(docs[source]), text)
        docs[source].append(d)
        return d["id"]

    base = [add(SOURCES[i % 3], random_text(rng, 150)) for i in range(240)]
    text_of = {d["id"]: d["text"] for ds in docs.values() for d in ds}
    pairs, non_pairs, exact = [], [], []
    for i in range(60):  # near-duplicates: 1-3 words edited, in another source
        a = base[i]
        b_text = edit_words(rng, text_of[a], 1 + i % 3)
        j = jaccard(text_of[a], b_text, sig)
        assert 0.8 <= j < 1.0, j
        pairs.append((a, add(SOURCES[(i + 1) % 3], b_text)))
    for i in range(60, 100):  # non-pairs: first half shared, second half new
        a = base[i]
        words = text_of[a].split(" ")
        c_text = " ".join(words[:75]) + " " + random_text(rng, 75)
        assert jaccard(text_of[a], c_text, sig) < 0.6
        non_pairs.append((a, add(SOURCES[(i + 2) % 3], c_text)))
    for i in range(100, 110):  # exact duplicates up to case, spaces and punctuation
        a = base[i]
        exact.append((a, add(SOURCES[(i + 1) % 3], text_of[a].upper().replace(".", " ;"))))
    for s, ds in docs.items():
        write_docs(tmp / "in" / s, ds[::2], "00000.jsonl.gz")
        write_docs(tmp / "in" / s, ds[1::2], "00001.jsonl.gz")
    return tmp, spec, pairs, non_pairs, exact, sum(len(v) for v in docs.values())


def curate(tmp, spec, name, workers):
    return run_curation(spec, inputs={s: tmp / "in" / s for s in SOURCES},
                        outputs={s: tmp / name / "out" / s for s in SOURCES}, work_dir=tmp / name / "work",
                        records_dir=tmp / name / "records", tokenizer_path=None, workers=workers, seed=0, file="m")


@pytest.fixture(scope="module")
def first_run(corpus):
    tmp, spec, *_ = corpus
    summary = curate(tmp, spec, "w1", workers=1)
    return summary, load_removed(tmp / "w1" / "records")


def test_planted_near_duplicates_recall_and_precision(corpus, first_run):
    _, _, pairs, non_pairs, _, _ = corpus
    summary, removed = first_run
    mh = [(r["id"], r["detail"]) for r in removed if r["step"] == "minhash_dedup"]
    planted = {frozenset(p) for p in pairs}
    found = {frozenset(p) for p in mh if frozenset(p) in planted}
    recall = len(found) / len(planted)
    precision = sum(frozenset(p) in planted for p in mh) / max(1, len(mh))
    print(f"minhash recall={recall:.3f} precision={precision:.3f} banding={summary['minhash']}")
    assert recall >= 0.95 and precision >= 0.95
    non_pair_ids = {x for p in non_pairs for x in p}
    assert not any(i in non_pair_ids for i, _ in mh)


def test_exact_duplicates_name_the_kept_document(corpus, first_run):
    tmp, _, _, _, exact, n_docs = corpus
    summary, removed = first_run
    ex = {frozenset((r["id"], r["detail"])) for r in removed if r["step"] == "exact_dedup"}
    assert ex == {frozenset(p) for p in exact}
    kept = [d for s in SOURCES for d in read_docs(tmp / "w1" / "out" / s)]
    assert len(kept) + len(removed) == n_docs
    assert all(d["metadata"]["_source"] == s for s in SOURCES for d in read_docs(tmp / "w1" / "out" / s))
    assert summary["removed"]["exact_dedup"] == len(exact)
    per_source = summary["sources"]
    assert sum(v["docs_in"] for v in per_source.values()) == n_docs
    assert sum(v["docs_out"] for v in per_source.values()) == len(kept)


def test_rerun_resumes_without_duplicate_records(corpus, first_run):
    tmp, spec, *_ = corpus
    _, removed = first_run
    curate(tmp, spec, "w1", workers=1)  # every task is done: skipped, records unchanged
    again = load_removed(tmp / "w1" / "records")
    assert sorted(map(str, again)) == sorted(map(str, removed))


@pytest.mark.slow
def test_same_removals_whatever_the_worker_count(corpus, first_run):
    tmp, spec, *_ = corpus
    _, removed = first_run
    curate(tmp, spec, "w3", workers=2)
    other = load_removed(tmp / "w3" / "records")
    key = lambda r: (r["id"], r["step"], r["detail"])  # noqa: E731
    assert sorted(map(key, other)) == sorted(map(key, removed))
    for s in SOURCES:
        assert read_docs(tmp / "w3" / "out" / s) == read_docs(tmp / "w1" / "out" / s)
