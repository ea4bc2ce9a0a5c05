"""HuggingFaceTB/smollm-corpus: fineweb-edu-dedup (Language Reference + docstrings) and cosmopedia-v2.

python-edu rows point at blobs and are drawn with stack-edu's: code_blobs.py.
"""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa

from tools.make_samples.common import approx_tokens, chunks, edu_score, rng_for, write_parquet, write_readme


DIRS = ["HuggingFaceTB__smollm-corpus"]


FINEWEB_EDU_DEDUP = pa.schema(
    [
        ("text", pa.string()),
        ("id", pa.string()),
        (
            "metadata",
            pa.struct(
                [
                    ("dump", pa.string()),
                    ("url", pa.string()),
                    ("date", pa.timestamp("s")),
                    ("file_path", pa.string()),
                    ("language", pa.string()),
                    ("language_score", pa.float64()),
                    ("token_count", pa.int64()),
                    ("score", pa.float64()),
                    ("int_score", pa.int64()),
                ]
            ),
        ),
    ]
)
COSMOPEDIA_V2 = pa.schema(
    [
        ("prompt", pa.string()),
        ("text", pa.string()),
        ("token_length", pa.int64()),
        ("audience", pa.string()),
        ("format", pa.string()),
        ("seed_data", pa.string()),
    ]
)


def make_fineweb_edu(docmods, target_chars: int = 1_050_000) -> list[dict]:
    from pydoc_data import topics

    rng = rng_for("fineweb-edu-dedup")
    docs: list[tuple[str, str]] = []  # (url, text)
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    for key in sorted(topics.topics):
        for i, chunk in enumerate(chunks(topics.topics[key].strip(), 6000)):
            docs.append((f"https://docs.python.org/{ver}/reference/#{key}-{i}", chunk))
    for mod, mdoc, classes, _ in docmods:
        if len(mdoc) >= 300:
            docs.append((f"https://docs.python.org/{ver}/library/{mod}.html", f"The {mod} module\n\n{mdoc.strip()}"))
        if classes:
            body = "\n\n".join(f"{name}\n{'-' * len(name)}\n{doc.strip()}" for name, doc in classes)
            for i, chunk in enumerate(chunks(body, 6000)):
                docs.append((f"https://docs.python.org/{ver}/library/{mod}.html#classes-{i}", f"Classes in {mod}\n\n{chunk}"))
    rows, total = [], 0
    base = datetime(2024, 2, 20, 12, 0, 0)
    for url, text in docs:
        if len(text) < 200:
            continue
        if total >= target_chars:
            break
        total += len(text)
        score, int_score = edu_score(rng, 2.52, 4.95)
        rows.append(
            {
                "text": text,
                "id": f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}>",
                "metadata": {
                    "dump": "CC-MAIN-2024-10",
                    "url": url,
                    "date": base + timedelta(seconds=rng.randrange(0, 86400 * 10)),
                    "file_path": f"datakit-sample://python-{ver}-stdlib-docs/{len(rows):05d}",
                    "language": "en",
                    "language_score": round(rng.uniform(0.86, 0.99), 6),
                    "token_count": approx_tokens(text),
                    "score": score,
                    "int_score": int_score,
                },
            }
        )
    return rows


def make_cosmopedia(docmods, target_chars: int = 1_050_000) -> list[dict]:
    rng = rng_for("cosmopedia-v2")
    audiences = ["college_students", "grade_school_students", "general", "researchers", "young_children"]
    formats = ["textbook", "blogpost", "wikihow", "story_morality", "textbook_unit_written_for_college_students"]
    rows, total = [], 0
    for mod, _, _, funcs in docmods:
        if len(funcs) < 2 or total >= target_chars:
            continue
        for part, chunk in enumerate(chunks("\n\n".join(f"### `{mod}.{n}`\n\n{d.strip()}" for n, d in funcs), 7000)):
            if total >= target_chars:
                break
            audience, fmt = rng.choice(audiences), rng.choice(formats)
            title = f"# Working with `{mod}` in Python" + (f" (part {part + 1})" if part else "")
            text = f"{title}\n\nThis unit walks through the public functions of the `{mod}` module.\n\n{chunk}"
            total += len(text)
            rows.append(
                {
                    "prompt": (
                        f"Write an extensive and detailed {fmt.replace('_', ' ')} unit for {audience.replace('_', ' ')} "
                        f"about the Python standard-library module `{mod}`, covering its public functions."
                    ),
                    "text": text,
                    "token_length": approx_tokens(text),
                    "audience": audience,
                    "format": fmt,
                    "seed_data": "python_stdlib_docstrings",
                }
            )
    return rows


def write(out: Path, docmods, code_counts: dict[str, int], src_note: list[str]) -> dict[str, int]:
    """fineweb-edu-dedup and cosmopedia-v2 parquet, and the corpus README (python-edu rows: code_blobs)."""
    smol = out / "HuggingFaceTB__smollm-corpus"
    fw = make_fineweb_edu(docmods)
    write_parquet(fw, FINEWEB_EDU_DEDUP, smol / "fineweb-edu-dedup" / "train-00000.parquet")
    cp = make_cosmopedia(docmods)
    write_parquet(cp, COSMOPEDIA_V2, smol / "cosmopedia-v2" / "train-00000.parquet")
    code = code_counts
    write_readme(smol, "HuggingFaceTB/smollm-corpus (sample)", [
        "Configs: fineweb-edu-dedup, cosmopedia-v2, python-edu (split train).",
        "fineweb-edu-dedup: text from the Python Language Reference (pydoc_data.topics) and module/class docstrings.",
        "cosmopedia-v2: text from function docstrings, grouped per module as textbook units.",
        "python-edu: blob ids only (no text), like upstream; the blobs are in ../softwareheritage/content/.",
        f"python-edu rows: {code['python_edu_rows']}, of which {code['python_edu_missing']} point at blobs absent from the store.",
        *src_note,
    ])
    return {"fineweb-edu-dedup": len(fw), "cosmopedia-v2": len(cp)}
