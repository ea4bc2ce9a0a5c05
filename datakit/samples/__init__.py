"""Embedded samples: small files with the exact upstream column schemas, for demos and tests.

The values are SAMPLES (text from Python's own standard library and templated math/planning records,
see docs/samples.md); only the schemas, nesting and types match the upstream Hugging Face datasets.
A mixture spec refers to them as `samples://<rel>`, resolved against `SAMPLES_DIR` by `sample_path`.
Regenerate with `python -m tools.make_samples` from the repository root (a build tool, not shipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datakit.errors import UserError

SAMPLES_DIR: Path = Path(__file__).resolve().parent

# Local stand-in for s3://softwareheritage/content/{blob_id}: gzip files named by blob id.
BLOB_STORE_DIR: Path = SAMPLES_DIR / "softwareheritage" / "content"


@dataclass(frozen=True)
class Sample:
    """One embedded sample and the upstream dataset whose schema it copies.

    hf_repo / config / splits: where the real data lives on the Hugging Face Hub.
    glob: files relative to SAMPLES_DIR, `{split}` filled in by `files()`.
    format: the formatter name (datakit.sources.formatters) that renders one record to text.
    needs_hydration: True when rows carry blob ids and no text (python-edu, stack-edu).
    """

    name: str
    hf_repo: str
    config: str
    splits: tuple[str, ...]
    glob: str
    format: str
    needs_hydration: bool = False

    def rel(self, split: str = "train") -> str:
        """Relative glob of one split, usable as `samples://<rel>`."""
        if split not in self.splits:
            raise UserError(
                f"sample {self.name!r} has no split {split!r}",
                field="split",
                fix=f"use one of: {', '.join(self.splits)}",
            )
        return self.glob.format(split=split)

    def files(self, split: str = "train") -> list[Path]:
        return sorted(SAMPLES_DIR.glob(self.rel(split)))


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in [
        Sample("fineweb-edu-dedup", "HuggingFaceTB/smollm-corpus", "fineweb-edu-dedup", ("train",),
               "HuggingFaceTB__smollm-corpus/fineweb-edu-dedup/{split}-*.parquet", "fineweb-edu"),
        Sample("cosmopedia-v2", "HuggingFaceTB/smollm-corpus", "cosmopedia-v2", ("train",),
               "HuggingFaceTB__smollm-corpus/cosmopedia-v2/{split}-*.parquet", "cosmopedia"),
        Sample("python-edu", "HuggingFaceTB/smollm-corpus", "python-edu", ("train",),
               "HuggingFaceTB__smollm-corpus/python-edu/{split}-*.parquet", "code", needs_hydration=True),
        Sample("finemath-4plus", "HuggingFaceTB/finemath", "finemath-4plus", ("train",),
               "HuggingFaceTB__finemath/finemath-4plus/{split}-*.parquet", "finemath"),
        Sample("stack-edu-python", "HuggingFaceTB/stack-edu", "Python", ("train",),
               "HuggingFaceTB__stack-edu/Python/{split}-*.parquet", "code", needs_hydration=True),
        Sample("gsm8k", "openai/gsm8k", "main", ("train", "test"),
               "openai__gsm8k/main/{split}-*.parquet", "gsm8k"),
        Sample("apps", "codeparrot/apps", "all", ("train", "test"),
               "codeparrot__apps/all/{split}-*.parquet", "apps"),
        Sample("arc-challenge", "allenai/ai2_arc", "ARC-Challenge", ("train", "test"),
               "allenai__ai2_arc/ARC-Challenge/{split}-*.parquet", "arc"),
        Sample("arc-easy", "allenai/ai2_arc", "ARC-Easy", ("train", "test"),
               "allenai__ai2_arc/ARC-Easy/{split}-*.parquet", "arc"),
        Sample("orca-math", "microsoft/orca-math-word-problems-200k", "default", ("train",),
               "microsoft__orca-math-word-problems-200k/default/{split}-*.parquet", "orca-math"),
        Sample("planning", "datakit (Contract 3 records)", "default", ("train",),
               "datakit__planning/default/{split}-*.jsonl", "planning"),
        Sample("boolq", "google/boolq", "default", ("train", "validation"),
               "google__boolq/default/{split}-*.parquet", "boolq"),
        Sample("math-algebra-linear-2d-composed", "deepmind/math_dataset", "algebra__linear_2d_composed", ("train", "test"),
               "deepmind__math_dataset/algebra__linear_2d_composed/{split}-*.parquet", "math-dataset"),
        Sample("math-arithmetic-mixed", "deepmind/math_dataset", "arithmetic__mixed", ("train", "test"),
               "deepmind__math_dataset/arithmetic__mixed/{split}-*.parquet", "math-dataset"),
        Sample("smoltalk2-mid", "HuggingFaceTB/smoltalk2", "Mid", ("OpenThoughts3_1.2M",),
               "HuggingFaceTB__smoltalk2/Mid/{split}-*.parquet", "chat"),
        Sample("hellaswag", "Rowan/hellaswag", "default", ("validation",),
               "Rowan__hellaswag/default/{split}-*.parquet", "hellaswag"),
    ]
}


def sample_path(rel: str) -> Path:
    """Resolve the `<rel>` of a `samples://<rel>` URI to a path (or glob) under SAMPLES_DIR.

    Accepts the bare relative path or the full `samples://...` URI; refuses paths that leave SAMPLES_DIR.
    The result may contain glob characters; the caller expands it.
    """
    rel = rel.removeprefix("samples://").lstrip("/")
    path = (SAMPLES_DIR / rel).resolve() if "*" not in rel else SAMPLES_DIR / rel
    if ".." in Path(rel).parts or not str(path).startswith(str(SAMPLES_DIR)):
        raise UserError(
            f"samples:// path {rel!r} points outside the embedded samples",
            field="uri",
            fix="use a path relative to the samples folder, e.g. samples://openai__gsm8k/main/train-*.parquet",
        )
    return path


__all__ = ["BLOB_STORE_DIR", "SAMPLES", "SAMPLES_DIR", "Sample", "sample_path"]
