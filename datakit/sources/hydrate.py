"""Hydration: fetch the text of rows that ship only a blob id (python-edu, stack-edu).

Both datasets list files of The Stack v2 by Software Heritage blob id; the contents live in the public,
requester-free bucket `s3://softwareheritage/content/<blob_id>`, gzip-compressed. Reads are unsigned
(`anon=True`): no AWS credentials are needed. A few ids are absent from the bucket (S3 answers NoSuchKey);
those rows are counted as missing and skipped, never turned into empty documents.

    store = BlobStore(cache_dir="data/.blobs")          # s3://softwareheritage/content/{blob_id}, unsigned
    ok = hydrate_record(row, store)                     # row["text"] = decoded file, False when missing
    store.stats()                                       # {"n_fetched": .., "n_cached": .., ...}

Any fsspec URL works as the template (`file:///path/content/{blob_id}` for a local copy, such as the
embedded samples' `datakit/samples/softwareheritage/content/`, or `s3://bucket/...` on an S3-compatible
server via `storage_options={"endpoint_url": ...}`).
"""

from __future__ import annotations

import gzip
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec

from datakit.errors import UserError

SWH_CONTENT_URL = "s3://softwareheritage/content/{blob_id}"
_BLOB_ID = re.compile(r"[0-9A-Za-z_-]{1,128}")  # SWH ids are 40 hex digits; never a path separator
_MISSING_MARK = b"\x00datakit:missing-blob\x00"


class BlobStore:
    """Reads gzip-compressed blobs by id from an fsspec URL template, with a local on-disk cache.

    url_template: where blob `{blob_id}` lives, e.g. "s3://softwareheritage/content/{blob_id}".
    storage_options: passed to the fsspec filesystem; for s3 the default is `{"anon": True}` (unsigned
        requests, as the Software Heritage bucket allows); add `endpoint_url` for an S3-compatible server.
    cache_dir: folder keeping every fetched blob (decompressed bytes, so any src_encoding decodes from it)
        and a marker for every missing one; a rerun reads from here instead of the network. None: no cache.

    Counters: n_fetched (read from the store), n_cached (served from cache_dir), n_missing (blob absent:
    NoSuchKey / FileNotFoundError), n_decode_errors (bytes that did not decode with the row's src_encoding;
    decoded as UTF-8 with replacement characters instead).
    """

    def __init__(self, url_template: str = SWH_CONTENT_URL, storage_options: dict | None = None, cache_dir: str | None = None):
        if "{blob_id}" not in url_template:
            raise UserError(
                f"blob URL {url_template!r} has no {{blob_id}} placeholder",
                field="hydrate.url", fix=f"use e.g. {SWH_CONTENT_URL!r}",
            )
        self.url_template = url_template
        self.protocol = fsspec.core.split_protocol(url_template)[0] or "file"
        defaults: dict[str, Any] = {"anon": True} if self.protocol in ("s3", "s3a") else {}
        self.storage_options = {**defaults, **(storage_options or {})}
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.n_fetched = self.n_cached = self.n_missing = self.n_decode_errors = 0
        self._lock = threading.Lock()
        self._fs = None

    # fsspec filesystems hold sockets and event loops: rebuild them after pickling (datatrove workers)
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_fs"], state["_lock"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def fs(self):
        if self._fs is None:
            try:
                self._fs = fsspec.filesystem(self.protocol, **self.storage_options)
            except ImportError as e:
                raise UserError(
                    f"reading {self.protocol}:// blobs needs an extra package ({e})",
                    field="hydrate.url", fix="pip install s3fs (for s3://) or use a file:// blob store",
                ) from None
        return self._fs

    def url(self, blob_id: str) -> str:
        return self.url_template.format(blob_id=blob_id)

    def stats(self) -> dict[str, int]:
        return {"n_fetched": self.n_fetched, "n_cached": self.n_cached, "n_missing": self.n_missing,
                "n_decode_errors": self.n_decode_errors}

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    # -- cache ------------------------------------------------------------------------------------------
    def _cache_path(self, blob_id: str) -> Path | None:
        return self.cache_dir / blob_id[:2] / blob_id if self.cache_dir else None

    def _cache_write(self, path: Path, data: bytes) -> None:
        """Atomic: a temp file in the same folder, then os.replace; a killed run never leaves half a blob."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- fetching ---------------------------------------------------------------------------------------
    def fetch_bytes(self, blob_id: str) -> bytes | None:
        """The decompressed content of one blob, or None when the store does not have it."""
        if not blob_id or not _BLOB_ID.fullmatch(blob_id):
            self._count("n_missing")
            return None
        cache = self._cache_path(blob_id)
        if cache is not None and cache.exists():
            data = cache.read_bytes()
            self._count("n_cached")
            if data == _MISSING_MARK:
                self._count("n_missing")
                return None
            return data
        try:
            with self.fs.open(self.url(blob_id), "rb") as f:
                raw = f.read()
        except FileNotFoundError:  # s3fs turns S3's NoSuchKey into FileNotFoundError
            self._count("n_missing")
            if cache is not None:
                self._cache_write(cache, _MISSING_MARK)
            return None
        except PermissionError as e:
            raise UserError(
                f"access denied reading {self.url(blob_id)} ({e})",
                field="hydrate.storage_options",
                fix="the Software Heritage bucket is read unsigned: keep anon = true (the default), or give credentials for a private store",
            ) from None
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw  # SWH blobs are gzip; accept plain copies
        self._count("n_fetched")
        if cache is not None:
            self._cache_write(cache, data)
        return data

    def decode(self, data: bytes, encoding: str | None = None) -> str:
        """Decode with the row's src_encoding (default UTF-8); on failure UTF-8 with replacement, counted."""
        try:
            return data.decode(encoding or "utf-8")
        except (UnicodeDecodeError, LookupError):
            self._count("n_decode_errors")
            return data.decode("utf-8", errors="replace")

    def fetch(self, blob_id: str, encoding: str | None = None) -> str | None:
        """The text of one blob decoded with `encoding` (the row's src_encoding), or None when missing."""
        data = self.fetch_bytes(blob_id)
        return None if data is None else self.decode(data, encoding)

    def fetch_many(self, items: Iterable[tuple[str, str | None]], *, workers: int = 16, window: int = 256) -> Iterator[str | None]:
        """`fetch` over (blob_id, encoding) pairs with `workers` threads (network latency hides behind the
        pool), yielding results in input order; at most `window` requests are in flight."""
        it = iter(items)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = []
            for blob_id, enc in it:
                pending.append(pool.submit(self.fetch, blob_id, enc))
                if len(pending) >= window:
                    yield pending.pop(0).result()
            for fut in pending:
                yield fut.result()


def hydrate_record(
    record: MutableMapping[str, Any],
    store: BlobStore,
    *,
    id_column: str = "blob_id",
    encoding_column: str = "src_encoding",
    text_column: str = "text",
) -> bool:
    """Fill record[text_column] from the blob named by record[id_column]; False when the blob is missing.

    encoding_column: the row's source encoding (stack-edu's `src_encoding`); rows without it (python-edu)
    are decoded as UTF-8.
    """
    if id_column not in record:
        raise UserError(
            f"record has no blob-id column {id_column!r} (columns: {', '.join(sorted(map(str, record)))})",
            field="hydrate.id_column", fix="set hydrate.id_column to the column holding Software Heritage blob ids",
        )
    blob_id = record[id_column]
    text = store.fetch(str(blob_id), record.get(encoding_column)) if blob_id else None
    if blob_id is None or blob_id == "":
        store._count("n_missing")
    if text is None:
        return False
    record[text_column] = text
    return True


__all__ = ["SWH_CONTENT_URL", "BlobStore", "hydrate_record"]
