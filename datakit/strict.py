"""The base of every typed file the project reads (specs, phase files): unknown keys are refused.

`Strict`: a typo in a key is an error naming the field, never a silently ignored setting; NaN and
infinity are refused (a NaN budget or threshold compares false with everything).
`StrictTypes`: also no type coercion, for files a person types: a TOML string is not a number
(`seq_len = "256"` is refused, not read as 256); sizes like "50B" are parsed by their own validators;
integers still pass as floats.

Depends on pydantic only (the engine uses it without the rest of datakit).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StrictTypes(Strict):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)
