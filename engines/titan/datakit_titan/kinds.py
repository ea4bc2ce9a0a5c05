"""The two kinds of phase file, told apart in one place.

    lm     pretrain / mid-train: next-token loss over packed documents, one or more seq-len stages
           (datakit_titan.phase; TorchTitan registry `datakit_titan`)
    prefs  phase 3: SFT / DPO / ORPO over examples, one stage, RoPE change, reference log-probs
           (datakit_titan.prefs.phase; TorchTitan registry `datakit_titan.prefs`)

The launcher (launch.py), the per-rank entry (train.py) and the CLI all ask `kind_of(path)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datakit_titan.phase import Phase, load_phase
from datakit_titan.prefs.phase import is_prefs_phase, load_prefs_phase


@dataclass(frozen=True)
class PhaseKind:
    name: str
    load: Callable[[str | Path], Phase]  # read and validate the file (UserError naming file and field)
    titan_module: str  # TorchTitan `--module` whose `phase` config the per-rank entry runs


LM = PhaseKind("lm", load_phase, "datakit_titan")
PREFS = PhaseKind("prefs", load_prefs_phase, "datakit_titan.prefs")


def kind_of(path: str | Path) -> PhaseKind:
    """PREFS when the file's [phase] loss is sft_dpo / sft / dpo / orpo, else LM (unreadable files: LM's loader says why)."""
    return PREFS if is_prefs_phase(path) else LM


def load_any_phase(path: str | Path) -> Phase:
    return kind_of(path).load(path)
