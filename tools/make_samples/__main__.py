"""`python -m tools.make_samples [--out DIR]`: write every sample, swapping in only complete output."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from datakit.samples import SAMPLES_DIR
from tools.make_samples import (apps, arc, boolq, code_blobs, finemath, gsm8k, hellaswag, math_dataset, orca_math, planning,
                                smollm_corpus, smoltalk2)
from tools.make_samples.common import stdlib_docstrings

# in the order they are written; each module owns its folders under the samples folder
DATASETS = [code_blobs, smollm_corpus, finemath, gsm8k, apps, arc, orca_math, planning, boolq, math_dataset, smoltalk2, hellaswag]
GENERATED_DIRS = [d for m in DATASETS for d in m.DIRS]


def generate(out: Path) -> dict[str, int]:
    """Write every sample under `out` (an empty or previous samples folder); returns row counts."""
    for d in GENERATED_DIRS:
        shutil.rmtree(out / d, ignore_errors=True)
    ver = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    src_note = [f"Text source: CPython {ver} standard library (pydoc_data.topics, docstrings, .py files)."]
    code = code_blobs.write(out, src_note)
    counts = smollm_corpus.write(out, stdlib_docstrings(), code, src_note)
    counts.update(code)
    for m in DATASETS[2:]:
        counts.update(m.write(out))
    return counts


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tools.make_samples", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", type=Path, default=SAMPLES_DIR, help="folder to write into (default: datakit/samples, the runtime's samples folder)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        counts = generate(Path(tmp))
        for d in GENERATED_DIRS:  # swap in only complete output
            shutil.rmtree(args.out / d, ignore_errors=True)
            os.replace(Path(tmp) / d, args.out / d)
    size = sum(p.stat().st_size for d in GENERATED_DIRS for p in (args.out / d).rglob("*") if p.is_file())
    print(f"wrote samples to {args.out}: {size / 1e6:.2f} MB")
    for k, v in counts.items():
        print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
