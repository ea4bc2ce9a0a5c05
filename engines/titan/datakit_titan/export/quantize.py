"""Quantized GGUFs through llama.cpp's own quantizer (`llama_model_quantize`, from llama-cpp-python,
which builds llama.cpp from source), from an f32 GGUF of the checkpoint.

Names are llama.cpp's (`llama-quantize --help`), lower case: q8_0, q6_k, q5_k_m, q4_k_m, ...
k-quants work on rows of 256 weights; a tensor whose rows are not a multiple of 256 gets llama.cpp's
fallback type (it says so on stderr) - the plan's model (hidden 2048, MLP 8192) has none.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from datakit.errors import UserError
BASE_TYPES = ("f32", "f16", "bf16")  # written by datakit_titan.export.gguf; the rest by llama.cpp
QUANT_TYPES = {  # name -> llama_ftype (llama.h)
    "q8_0": 7, "q6_k": 18, "q5_k_m": 17, "q5_k_s": 16, "q4_k_m": 15, "q4_k_s": 14, "q5_0": 8, "q5_1": 9, "q4_0": 2, "q4_1": 3,
    "q3_k_l": 13, "q3_k_m": 12, "q3_k_s": 11, "q2_k": 10, "iq4_nl": 25,
}
DEFAULT_QUANTS = ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m")


def parse_quants(text: str) -> list[str]:
    """'f16,q8_0,Q4_K_M' -> ['f16', 'q8_0', 'q4_k_m']; an unknown name is a UserError listing the known ones."""
    names = [q.strip().lower() for q in text.split(",") if q.strip()]
    known = [*BASE_TYPES, *QUANT_TYPES]
    bad = [q for q in names if q not in known]
    if bad or not names:
        raise UserError(f"unknown quant type {', '.join(map(repr, bad)) or '(none given)'}", field="--quant", fix=f"use some of {', '.join(known)}")
    return list(dict.fromkeys(names))


def quantize(src: str | Path, dst: str | Path, qtype: str, *, n_threads: int | None = None) -> Path:
    """llama.cpp's quantizer: the GGUF `src` (f32/f16/bf16) -> `dst` in `qtype`."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[qtype]
    params.nthread = n_threads or os.cpu_count() or 1
    with _stderr_captured() as log:  # llama.cpp writes a line per tensor to fd 2
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    notes = [line for line in log if re.search(r"fallback|warning|error|failed", line, re.I)]
    for line in notes if rc == 0 else log[-20:] + notes:
        print(f"    llama.cpp: {line.strip()}", file=sys.stderr)
    if rc != 0:
        raise RuntimeError(f"llama.cpp's quantizer failed ({rc}) on {src} -> {qtype}")
    return Path(dst)


@contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """Redirect the process's fd 2 (where C++ code writes) to a temporary file for the block; the
    yielded list holds its lines afterwards."""
    sys.stderr.flush()
    saved, lines = os.dup(2), []
    with tempfile.TemporaryFile(mode="w+") as f:
        os.dup2(f.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            lines.extend(f.read().splitlines())
