"""Which trained model an export reads: a phase's checkpoint (final or a given step), the phase's model
(its preset, vocabulary and RoPE, phase 3 included) and its tokenizer, checked before anything is written.

    resolve("outputs/midtrain")                      # the run folder: its phase.toml, newest step
    resolve("engines/titan/phases/midtrain.toml", step=2000)
    resolve("outputs/midtrain", phase_file="engines/titan/phases/midtrain.toml")

`titan run` leaves a copy of its phase file at `<output>/phase.toml`; older runs need `--phase`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from datakit.errors import UserError
from datakit.contract import Manifest, load_manifest, sha256_file
from datakit_titan.kinds import load_any_phase
from datakit_titan.phase import Phase
from datakit_titan.presets import PRESETS, Preset

PHASE_COPY = "phase.toml"  # written into a run's output folder by `titan run`
_STEP = re.compile(r"^step-(\d+)$")


@dataclass
class Trained:
    """A trained model as an export sees it."""

    phase: Phase
    checkpoint: Path  # a TorchTitan DCP `step-N` folder
    step: int
    preset: Preset  # with the phase's RoPE base and trained context
    rope: dict  # theta, scaling ("none" | "llama" | "yarn"), factor, original_seq_len
    vocab_size: int
    context: int  # the longest seq_len the phase trained at (max_position_embeddings)
    manifest: Manifest
    tokenizer: Path  # the mixture's tokenizer.json (sha256 checked against the manifest)

    @property
    def name(self) -> str:
        return self.phase.phase.name


def record_phase(phase_path: str | Path) -> None:
    """Leave a copy of the phase file in its output folder, so `titan export <output>` knows the model."""
    phase = load_any_phase(Path(phase_path))
    out = Path(phase.phase.output)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{PHASE_COPY}.tmp"
    tmp.write_text(Path(phase_path).read_text())
    tmp.replace(out / PHASE_COPY)


def _find_phase(source: Path, phase_file: Path | None) -> tuple[Phase, Path]:
    """(phase, folder holding the checkpoints) for a phase file, a run folder or a step folder."""
    if phase_file is not None:
        phase = load_any_phase(phase_file)
        return phase, (Path(phase.phase.output) if source.suffix == ".toml" else source)
    if source.suffix == ".toml":
        phase = load_any_phase(source)
        return phase, Path(phase.phase.output)
    if not source.exists():
        raise UserError("does not exist", file=source, fix="pass a run's output folder (e.g. outputs/midtrain) or its phase file")
    for folder in [source, *source.parents][:4]:  # <run>/[stageK/]checkpoint/step-N
        if (folder / PHASE_COPY).is_file():
            phase = load_any_phase(folder / PHASE_COPY)
            return phase, source
    raise UserError(
        f"no {PHASE_COPY} in this run folder (runs started before `titan export` existed have none)",
        file=source, fix="name the phase it was trained with: --phase engines/titan/phases/<phase>.toml",
    )


def list_checkpoints(folder: Path) -> dict[int, Path]:
    """step -> `step-N` folder under a run folder (all stages), a `checkpoint/` folder or a step folder."""
    if _STEP.match(folder.name):
        return {int(_STEP.match(folder.name).group(1)): folder}
    found: dict[int, Path] = {}
    for parent in [folder, folder / "checkpoint", *folder.glob("stage*/checkpoint")]:
        for d in parent.glob("step-*") if parent.is_dir() else []:
            if d.is_dir() and (m := _STEP.match(d.name)):
                found[int(m.group(1))] = d
    return found


def _pick_checkpoint(folder: Path, step: int | None, phase: Phase) -> tuple[Path, int]:
    steps = list_checkpoints(folder)
    complete = {s: d for s, d in steps.items() if (d / ".metadata").is_file()}  # DCP writes .metadata last
    if not steps:
        raise UserError(
            "no checkpoint (no step-N folder)" if folder.exists() else "run folder does not exist",
            file=folder, fix=f"train it first: titan run {phase.path}",
        )
    if step is None:
        if not complete:
            raise UserError(f"no complete checkpoint (steps {sorted(steps)} have no .metadata: still saving, or cut short)",
                            file=folder, fix="let the run save a checkpoint, or resume it with `titan run`")
        step = max(complete)
    elif step not in steps:
        raise UserError(f"no checkpoint at step {step}", file=folder, field="--step", fix=f"use one of {sorted(steps)}")
    elif step not in complete:
        raise UserError(f"checkpoint step-{step} is incomplete (no .metadata)", file=steps[step], field="--step",
                        fix=f"use a complete one: {sorted(complete)}" if complete else "resume the run to save one")
    return complete[step], step


def resolve(source: str | Path, *, phase_file: str | Path | None = None, step: int | None = None,
            tokenizer: str | Path | None = None) -> Trained:
    """Find the checkpoint and everything the export needs, and check it matches the phase's model."""
    from datakit_titan.validate import model_vocab

    phase, folder = _find_phase(Path(source), Path(phase_file) if phase_file else None)
    ckpt, step = _pick_checkpoint(folder, step, phase)
    manifest = load_manifest(phase.phase.mixture)
    vocab = model_vocab(phase)
    preset = phase.preset() if hasattr(phase, "preset") else PRESETS[phase.phase.model]
    context = max(s.seq_len for s in phase.stage)
    rope = phase.rope.settings(preset) if hasattr(phase, "rope") else {"theta": float(preset.rope_theta), "scaling": "none", "factor": 1.0, "original_seq_len": None}
    tok = Path(tokenizer) if tokenizer else Path(manifest.tokenizer.path)
    if not tok.is_file():
        raise UserError(f"the mixture's tokenizer {tok} is missing", file=Path(phase.phase.mixture) / "manifest.json",
                        field="tokenizer.path", fix="run from the folder the mixture was built in, or pass --tokenizer <tokenizer.json>")
    if sha256_file(tok) != manifest.tokenizer.sha256:
        raise UserError(f"{tok} is not the tokenizer the mixture was built with (sha256 differs)", field="--tokenizer",
                        fix="pass the tokenizer.json the mixture was built with")
    trained = Trained(phase=phase, checkpoint=ckpt, step=step, preset=dataclasses.replace(preset, max_seq_len=max(preset.max_seq_len, context)),
                      rope=rope, vocab_size=vocab, context=context, manifest=manifest, tokenizer=tok)
    check_shapes(trained)
    return trained


def _model_spec(t: Trained):
    from datakit_titan.spec import model_spec

    if hasattr(t.phase, "rope"):
        from datakit_titan.prefs.config_registry import prefs_model_spec

        return prefs_model_spec(t.phase, t.vocab_size)
    return model_spec(t.phase.phase.model, t.vocab_size)


def _expected_shapes(t: Trained) -> dict[str, tuple[int, ...]]:
    import torch

    with torch.device("meta"):
        model = _model_spec(t).model.build()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_shapes(t: Trained) -> None:
    """The checkpoint's weights must be the phase's preset: same names, same shapes."""
    import torch.distributed.checkpoint as dcp

    stored = dcp.FileSystemReader(str(t.checkpoint)).read_metadata().state_dict_metadata
    for key, shape in _expected_shapes(t).items():
        meta = stored.get(key)
        got = tuple(meta.size) if meta is not None and hasattr(meta, "size") else None
        if got != shape:
            raise UserError(
                f"checkpoint {t.checkpoint} does not hold the {t.phase.phase.model!r} model "
                + (f"(no {key})" if got is None else f"({key} is {list(got)}, the preset needs {list(shape)})"),
                file=t.phase.path, field="phase.model", fix="export with the phase file this checkpoint was trained with (--phase)",
            )


def load_model(t: Trained):
    """The TorchTitan model of the phase with the checkpoint's weights, fp32, on CPU, eval mode."""
    import torch
    import torch.distributed.checkpoint as dcp

    from datakit_titan import cpu

    cpu.enable()  # FlexAttention -> SDPA on CPU (forward passes of the checks and the quant report)
    with torch.device("meta"):
        model = _model_spec(t).model.build()
    model.to_empty(device="cpu")
    with torch.no_grad():
        model.init_weights(buffer_device=None)  # the RoPE cache of this phase's RoPE
    state = model.state_dict()
    dcp.load(state, checkpoint_id=str(t.checkpoint))
    model.load_state_dict(state)
    return model.float().eval()


def titan_logits(model, tokens):
    """Logits [B, T, V] of a TorchTitan model for token rows [B, T] (each row one document from position 0)."""
    import torch

    positions = torch.arange(tokens.shape[1]).expand(tokens.shape[0], -1)
    with torch.no_grad():
        return model(tokens, attention_masks=model.get_attention_masks(positions=positions), positions=positions).float()
