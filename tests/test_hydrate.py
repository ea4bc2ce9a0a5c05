"""Hydration of python-edu / stack-edu blob ids: a local fsspec store and a real local S3 server."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import socket

import pyarrow.parquet as pq
import pytest

from datakit.errors import UserError
from datakit.samples import BLOB_STORE_DIR, SAMPLES
from datakit.sources.formatters import get_formatter
from datakit.sources.hydrate import BlobStore, hydrate_record

LOCAL_URL = BLOB_STORE_DIR.as_uri() + "/{blob_id}"


def _rows(sample: str) -> list[dict]:
    return pq.read_table(SAMPLES[sample].files()[0]).to_pylist()


def _git_sha1(text: str, encoding: str = "utf-8") -> str:
    data = text.encode(encoding)
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def test_python_edu_hydrates_from_the_local_store_and_counts_missing_blobs(tmp_path):
    rows = _rows("python-edu")
    store = BlobStore(LOCAL_URL, cache_dir=str(tmp_path / "cache"))
    ok = [hydrate_record(r, store) for r in rows]
    assert ok.count(False) == 2
    assert store.stats() == {"n_fetched": len(rows) - 2, "n_cached": 0, "n_missing": 2, "n_decode_errors": 0}
    for r, hydrated in zip(rows, ok):
        if hydrated:
            assert _git_sha1(r["text"]) == r["blob_id"]  # the exact file, byte for byte
            assert len(r["text"].encode()) == r["length_bytes"]
        else:
            assert "text" not in r
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # atomic writes leave no temp files

    # a second run (fresh store, same cache) reads nothing from the store, missing blobs included
    again = BlobStore(LOCAL_URL, cache_dir=str(tmp_path / "cache"))
    texts = [again.fetch(r["blob_id"]) for r in rows]
    assert again.n_fetched == 0 and again.n_cached == len(rows) and again.n_missing == 2
    assert [t for t in texts if t is not None] == [r["text"] for r in rows if "text" in r]


def test_stack_edu_decodes_with_src_encoding_and_counts_decode_errors(tmp_path):
    rows = _rows("stack-edu-python")
    latin = next(r for r in rows if r["src_encoding"] != "UTF-8")
    store = BlobStore(LOCAL_URL)
    assert hydrate_record(latin, store)
    assert "ÀÁÂÃÄÅ" in latin["text"] and "\ufffd" not in latin["text"]
    assert _git_sha1(latin["text"], latin["src_encoding"]) == latin["blob_id"]
    assert store.n_decode_errors == 0

    wrong = store.fetch(latin["blob_id"], "utf-8")  # bytes that are not UTF-8: replaced, counted
    assert "\ufffd" in wrong and store.n_decode_errors == 1
    assert store.fetch(latin["blob_id"], "no-such-codec") is not None and store.n_decode_errors == 2

    text = get_formatter("code").render(latin)
    assert text.startswith("# repo: python/cpython\n# path: Lib/shlex.py\n")


def test_every_stack_edu_row_hydrates_or_is_counted_missing():
    rows = _rows("stack-edu-python")
    store = BlobStore(LOCAL_URL)
    results = list(store.fetch_many(((r["blob_id"], r["src_encoding"]) for r in rows), workers=4, window=8))
    assert len(results) == len(rows) and results.count(None) == 1 == store.n_missing
    for r, text in zip(rows, results):  # order preserved
        if text is not None:
            assert _git_sha1(text, r["src_encoding"]) == r["blob_id"]


def test_bad_configuration_is_a_user_error():
    with pytest.raises(UserError, match="placeholder"):
        BlobStore("s3://softwareheritage/content/")
    with pytest.raises(UserError) as e:
        hydrate_record({"sha": "abc"}, BlobStore(LOCAL_URL))
    assert e.value.field == "hydrate.id_column"
    store = BlobStore(LOCAL_URL)
    assert hydrate_record({"blob_id": "../../../etc/passwd"}, store) is False  # never a path outside the store
    assert hydrate_record({"blob_id": None}, store) is False
    assert store.n_missing == 2


def test_store_pickles_for_datatrove_workers(tmp_path):
    store = BlobStore(LOCAL_URL, cache_dir=str(tmp_path))
    blob_id = _rows("python-edu")[0]["blob_id"]
    assert store.fetch(blob_id)
    clone = pickle.loads(pickle.dumps(store))
    assert clone.fetch(blob_id) == store.fetch(blob_id)
    assert BlobStore().storage_options == {"anon": True}  # the real bucket is read unsigned


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_real_s3_protocol_against_a_local_server(s3_server, tmp_path, monkeypatch):
    import boto3

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    s3.create_bucket(Bucket="softwareheritage")
    all_rows = _rows("stack-edu-python")
    latin = next(r for r in all_rows if r["src_encoding"] != "UTF-8")
    rows = [r for r in all_rows[:8] if r is not latin] + [latin]
    stored = {r["blob_id"] for r in rows[1:]}  # rows[0] is left out: the server answers NoSuchKey
    for blob_id in stored:
        body = (BLOB_STORE_DIR / blob_id).read_bytes()  # gzip, as in the real bucket; public like the real one
        s3.put_object(Bucket="softwareheritage", Key=f"content/{blob_id}", Body=body, ACL="public-read")
    s3.put_object(Bucket="softwareheritage", Key="content/" + "0" * 40, Body=gzip.compress(b"private"))

    store = BlobStore(
        "s3://softwareheritage/content/{blob_id}",
        storage_options={"endpoint_url": s3_server, "skip_instance_cache": True},  # anon=True stays the default
        cache_dir=str(tmp_path / "cache"),
    )
    assert store.storage_options["anon"] is True
    ok = [hydrate_record(r, store) for r in rows]
    assert ok == [False] + [True] * (len(rows) - 1)
    assert store.n_missing == 1 and store.n_fetched == len(rows) - 1 and store.n_decode_errors == 0
    assert "ÀÁÂÃÄÅ" in latin["text"]
    local = gzip.decompress((BLOB_STORE_DIR / rows[1]["blob_id"]).read_bytes()).decode()
    assert rows[1]["text"] == local

    # second fetch of the same blobs: from the cache, the server is not asked again
    s3.delete_object(Bucket="softwareheritage", Key=f"content/{rows[1]['blob_id']}")
    assert store.fetch(rows[1]["blob_id"]) == local
    assert store.fetch(rows[0]["blob_id"]) is None
    assert store.n_cached == 2 and store.n_fetched == len(rows) - 1 and store.n_missing == 2

    # an object the unsigned client may not read is a configuration problem, not a missing blob
    with pytest.raises(UserError) as e:
        store.fetch("0" * 40)
    assert e.value.field == "hydrate.storage_options" and "anon" in e.value.fix
