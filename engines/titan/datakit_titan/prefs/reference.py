"""Phase 3's reference model: the phase's model with its init_from weights and its RoPE, scored once over
every DPO pair (`titan refscore <phase.toml>`, before `titan run`).
"""

from __future__ import annotations

from pathlib import Path

from datakit.errors import UserError
from datakit_titan.prefs.phase import PrefsPhase, load_prefs_phase


def load_reference_model(phase: PrefsPhase, checkpoint: Path, device: str):
    """The phase's model (its preset and RoPE) with the weights of `checkpoint` (a TorchTitan `step-N`
    folder, model keys at the top level as TorchTitan saves them), in eval mode."""
    import torch
    import torch.distributed.checkpoint as dcp

    from datakit_titan.prefs.config_registry import prefs_model_spec
    from datakit_titan.validate import model_vocab

    if device == "cpu":
        from datakit_titan import cpu

        cpu.enable()
    with torch.device("meta"):
        model = prefs_model_spec(phase, model_vocab(phase)).model.build()
    model.to_empty(device=device)
    with torch.no_grad():
        model.init_weights(buffer_device=None)  # builds the RoPE cache for this phase's RoPE
    state = model.state_dict()
    dcp.load(state, checkpoint_id=str(checkpoint))
    model.load_state_dict(state)
    if device != "cpu" and "bfloat16" in (phase.parallel.param_dtype, phase.parallel.mixed_precision):
        for p in model.parameters():  # the training run's compute dtype (the RoPE cache stays complex)
            p.data = p.data.to(torch.bfloat16)
    return model.eval()


def refscore_phase(path: str | Path, *, device: str = "cuda", batch_pairs: int = 4, progress: bool = True) -> dict:
    """Compute the reference log-probs a phase needs, from its `init_from` checkpoint, with its RoPE."""
    from datakit_titan.prefs.config_registry import reference_for
    from datakit_titan.prefs.refscore import compute_refscores, titan_forward
    from datakit_titan.validate import check_phase

    phase = load_prefs_phase(path)
    if phase.phase.loss not in ("sft_dpo", "dpo"):
        raise UserError(f"loss {phase.phase.loss!r} uses no reference model", file=phase.path, field="phase.loss",
                        fix="refscore is for loss = \"sft_dpo\" or \"dpo\"")
    check_phase(phase, device="cpu")  # mixture complete and intact, vocab, init_from exists
    ref = reference_for(phase)
    model = load_reference_model(phase, Path(ref["checkpoint"]), device)
    model._skip_lm_head = True  # project completion positions only, as the trainer does
    return compute_refscores(titan_forward(model), phase.phase.mixture, checkpoint=ref["checkpoint"], checkpoint_sha=ref["checkpoint_sha256"],
                             rope=ref["rope"], batch_pairs=batch_pairs, device=device, progress=progress, lm_head=model.lm_head)
