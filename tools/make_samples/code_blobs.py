"""python-edu (HuggingFaceTB/smollm-corpus) and HuggingFaceTB/stack-edu: rows of blob ids, and the local copy of
the Software Heritage bucket they point at. One module: both draw from one seeded shuffle of the stdlib files.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa

from tools.make_samples.common import edu_score, git_blob_sha1, rng_for, stdlib_py_files, write_parquet, write_readme


DIRS = ["HuggingFaceTB__stack-edu", "softwareheritage"]


PYTHON_EDU = pa.schema(
    [
        ("blob_id", pa.string()),
        ("repo_name", pa.string()),
        ("path", pa.string()),
        ("length_bytes", pa.int64()),
        ("score", pa.float64()),
        ("int_score", pa.int64()),
    ]
)
STACK_EDU = pa.schema(
    [
        ("blob_id", pa.large_string()),
        ("language", pa.large_string()),
        ("repo_name", pa.large_string()),
        ("path", pa.large_string()),
        ("src_encoding", pa.large_string()),
        ("length_bytes", pa.int64()),
        ("score", pa.float64()),
        ("int_score", pa.int64()),
        ("detected_licenses", pa.large_list(pa.large_string())),
        ("license_type", pa.large_string()),
    ]
)


def make_code_samples(out: Path, files: list[tuple[str, bytes]]) -> dict[str, int]:
    """python-edu and stack-edu rows plus the local blob store they point at."""
    store = out / "softwareheritage" / "content"
    store.mkdir(parents=True, exist_ok=True)
    repo = "python/cpython"  # the CPython version is recorded in README.txt
    small = [(p, d) for p, d in files if 1000 <= len(d) <= 24000]
    rng = rng_for("code")
    rng.shuffle(small)
    py_edu, stack = small[:200], small[200:350]

    def store_blob(data: bytes) -> str:
        blob_id = git_blob_sha1(data)
        (store / blob_id).write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        return blob_id

    # python-edu: two rows whose blobs are deliberately absent from the store (NoSuchKey in the real bucket)
    rows = []
    for i, (path, data) in enumerate(py_edu):
        blob_id = git_blob_sha1(data) if i in (17, 121) else store_blob(data)
        score, int_score = edu_score(rng, 3.52, 4.98)  # upstream keeps int_score >= 4
        rows.append({"blob_id": blob_id, "repo_name": repo, "path": path, "length_bytes": len(data), "score": score, "int_score": int_score})
    write_parquet(rows, PYTHON_EDU, out / "HuggingFaceTB__smollm-corpus" / "python-edu" / "train-00000.parquet")
    n_py_missing = 2

    # stack-edu (config Python): one row ISO-8859-1 encoded, one row missing from the store
    srows = []
    latin = next(((p, d) for p, d in files if p == "Lib/shlex.py"), None)
    entries = list(stack)
    if latin is not None:
        entries.insert(5, (latin[0], latin[1].decode("utf-8").encode("latin-1")))
    for i, (path, data) in enumerate(entries):
        is_latin = latin is not None and i == 5
        blob_id = git_blob_sha1(data) if i == 42 else store_blob(data)
        score, int_score = edu_score(rng, 2.6, 4.9)
        lic = ["PSF-2.0"] if rng.random() < 0.8 else []
        srows.append(
            {
                "blob_id": blob_id,
                "language": "Python",
                "repo_name": repo,
                "path": path,
                "src_encoding": "ISO-8859-1" if is_latin else "UTF-8",
                "length_bytes": len(data),
                "score": score,
                "int_score": int_score,
                "detected_licenses": lic,
                "license_type": "permissive" if lic else "no_license",
            }
        )
    write_parquet(srows, STACK_EDU, out / "HuggingFaceTB__stack-edu" / "Python" / "train-00000.parquet")
    return {"python_edu_rows": len(rows), "python_edu_missing": n_py_missing, "stack_edu_rows": len(srows), "stack_edu_missing": 1}


def write(out: Path, src_note: list[str]) -> dict[str, int]:
    """python-edu and stack-edu parquet, the blob store, and the stack-edu and store READMEs."""
    files = stdlib_py_files()
    code = make_code_samples(out, files)
    write_readme(out / "HuggingFaceTB__stack-edu", "HuggingFaceTB/stack-edu (sample)", [
        "Config Python, split train. Blob ids only (no text), like upstream; blobs in ../softwareheritage/content/.",
        f"Rows: {code['stack_edu_rows']}; one row has src_encoding ISO-8859-1 (Lib/shlex.py re-encoded as latin-1);",
        f"{code['stack_edu_missing']} row points at a blob absent from the store.",
        *src_note,
    ])
    write_readme(out / "softwareheritage", "Local copy of the Software Heritage S3 layout (sample)", [
        "content/<blob_id>: gzip-compressed file contents, blob_id = git blob sha1 of the uncompressed bytes,",
        "mirroring s3://softwareheritage/content/<blob_id>. A few blob ids referenced by the python-edu and",
        "stack-edu samples are deliberately absent, to exercise the missing-blob (NoSuchKey) path.",
        *src_note,
    ])
    return code
