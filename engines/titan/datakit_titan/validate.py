"""Bad input, caught before any model is built: each problem is one UserError naming file and field."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from datakit.errors import UserError
from datakit.contract import Manifest, load_manifest, open_mixture
from datakit_titan.phase import Phase, check_warmup
from datakit_titan.presets import PRESETS

_STEP = re.compile(r"step-(\d+)$")


@lru_cache(maxsize=8)
def _manifest(folder: str) -> Manifest:
    return load_manifest(folder)


def model_vocab(phase: Phase) -> int:
    """The model's vocabulary: the preset's, which must equal the mixture tokenizer's (a preset
    without one takes the tokenizer's)."""
    manifest = _manifest(str(Path(phase.phase.mixture).resolve()))
    preset = PRESETS[phase.phase.model].vocab_size
    tok = manifest.tokenizer.vocab_size
    if preset is not None and preset != tok:
        raise UserError(
            f"model preset {phase.phase.model!r} has vocab {preset:,} but the mixture's tokenizer has {tok:,}",
            file=phase.path, field="phase.mixture",
            fix="build the mixture with the model's tokenizer, or pick a preset with the tokenizer's vocab",
        )
    return preset or tok


def final_checkpoint(path: str | Path, phase: Phase) -> Path:
    """Newest `step-N` checkpoint under a previous phase's output folder (its last stage when it
    had several), a `checkpoint/` folder, or a `step-N` folder itself."""
    p = Path(path).resolve()

    def newest(folder: Path) -> Path | None:
        steps = [(int(m.group(1)), d) for d in folder.glob("step-*") if d.is_dir() and (m := _STEP.search(d.name))]
        return max(steps)[1] if steps else None

    candidates = [p] if _STEP.search(p.name) and p.is_dir() else []
    if not candidates and p.is_dir():
        for folder in [p, p / "checkpoint", *sorted(p.glob("stage*/checkpoint"), key=lambda d: int(re.match(r"stage(\d+)", d.parent.name).group(1)))[::-1]]:
            if folder.is_dir() and (found := newest(folder)):
                candidates = [found]
                break
    if not candidates:
        raise UserError(
            f"no checkpoint at {p}" if p.exists() else f"{p} does not exist",
            file=phase.path, field="phase.init_from",
            fix="run the previous phase first (`titan run <its phase file>`) or point init_from at its output folder",
        )
    return candidates[0]


def check_phase(phase: Phase, *, device: str = "cuda", n_gpus: int = 1, gpu_memory_gib: float | None = None) -> Manifest:
    """Every check that needs no model: mixture complete and intact, vocab, token budget, init_from, seq_len, fit."""
    mixture = Path(phase.phase.mixture)
    try:
        manifest = open_mixture(mixture).manifest
    except UserError as e:  # name the phase file and field; the mixture folder goes into the message
        e.what = f"{e.file}: {e.what}" if e.file and e.file != str(phase.path) else e.what
        e.file, e.field = str(phase.path), e.field if e.field and e.field.startswith("phase.") else "phase.mixture"
        raise
    model_vocab(phase)
    from datakit_titan.budget import check_budget

    check_budget(phase, manifest)  # no more than the mixture's tokens x max_epochs
    check_warmup(phase, n_gpus)
    if device == "cpu" and phase.parallel.attention != "flex":
        raise UserError(f"attention {phase.parallel.attention!r} needs a CUDA GPU", file=phase.path, field="parallel.attention",
                        fix='use attention = "flex" for --device cpu (the smoke mode evaluates its mask densely)')
    if hasattr(phase, "prefs") and not phase.parallel.document_masking:
        raise UserError("phase 3 rows are one example each: document_masking = false has no meaning there", file=phase.path,
                        field="parallel.document_masking", fix="remove it")
    if phase.phase.init_from:
        final_checkpoint(phase.phase.init_from, phase)
    if device != "cpu":
        from datakit_titan.estimate import Gpu, check_fits, find_gpu

        gpu = None
        if phase.parallel.gpu:
            gpu = find_gpu(phase.parallel.gpu)
        if gpu_memory_gib is not None:
            gpu = Gpu(gpu.name if gpu else "this GPU", gpu.peak_bf16_tflops if gpu else 0, gpu_memory_gib, "measured")
        if gpu is not None:
            check_fits(phase, gpu, n_gpus, vocab_size=model_vocab(phase))
    return manifest
