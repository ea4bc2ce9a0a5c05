"""The seed plan's own time and cost figures for a phase, checked by `titan estimate`.

    [plan_claim]                 # what the plan says this phase takes (optional)
    tokens = "25B"
    hours = 17.4                 # or days = 4
    tokens_per_s = 400
    usd = 9.80                   # the dollars the plan states (optional)
    usd_per_gpu_hour = 0.50      # the rate the plan states (optional)
    gpu = "a100"                 # the GPU the plan has in mind (catalogue name), gpus = 1
    note = "the plan's cost table says $55 for this phase"

Every line `check` prints is one multiplication or division a reader can redo by hand.
"""

from __future__ import annotations

import math

from pydantic import Field, field_validator, model_validator

from datakit.spec.sizes import parse_size
from datakit.strict import Strict


class PlanClaim(Strict):
    tokens: int
    hours: float | None = Field(None, gt=0)
    days: float | None = Field(None, gt=0)
    tokens_per_s: float = Field(gt=0)
    usd: float | None = Field(None, ge=0)
    usd_per_gpu_hour: float | None = Field(None, ge=0)
    gpu: str = "rtx5080"
    gpus: int = Field(1, gt=0)
    seq_len: int = Field(2048, gt=0)
    note: str = ""

    @field_validator("tokens", mode="before")
    @classmethod
    def _tokens(cls, v):
        return parse_size(v)

    @model_validator(mode="after")
    def _one_duration(self) -> "PlanClaim":
        if (self.hours is None) == (self.days is None):
            raise ValueError("give exactly one of hours and days")
        return self

    @property
    def seconds(self) -> float:
        return (self.hours if self.hours is not None else self.days * 24) * 3600

    def duration_text(self) -> str:
        return f"{self.hours:g} h" if self.hours is not None else f"{self.days:g} days"


def check(claim: PlanClaim, *, mfu: float = 0.4, model: str = "plan-1.6b") -> str:
    """The plan's figure, what its own numbers multiply out to, and what the GPU it names can do."""
    from datakit_titan.estimate import duration, find_gpu, flops_per_token, human
    from datakit_titan.presets import PRESETS

    p = PRESETS[model]
    g = find_gpu(claim.gpu)
    fl = flops_per_token(p, p.vocab_size or 65_536, claim.seq_len)["total"]
    secs, tps = claim.seconds, claim.tokens_per_s
    on = f"{claim.gpus} x {g.name}" if claim.gpus > 1 else f"one {g.name}"
    head = f"plan: {human(claim.tokens)} tokens in {claim.duration_text()} at {tps:g} tokens/s on {on}"
    if claim.usd is not None:
        head += f" for ${claim.usd:,.2f}"
    lines = [head]
    dur = claim.duration_text().replace(" h", " h x 3,600 s").replace(" days", " days x 86,400 s")
    lines.append(f"  {dur} x {tps:g} tokens/s = {secs * tps:,.0f} tokens, not {claim.tokens:,}")
    at_claimed = claim.tokens / tps
    lines.append(f"  {human(claim.tokens)} tokens at {tps:g} tokens/s = {at_claimed:,.0f} s = {duration(at_claimed)} "
                 f"({at_claimed / 86400 / 365:.1f} years)")
    if claim.usd_per_gpu_hour is not None:
        usd = secs / 3600 * claim.gpus * claim.usd_per_gpu_hour
        same = claim.usd is not None and abs(usd - claim.usd) < 0.005
        lines.append(f"  {secs / 3600:g} h x {claim.gpus} GPU x ${claim.usd_per_gpu_hour:g}/GPU-hour = ${usd:,.2f}"
                     + ("" if claim.usd is None or same else f", not ${claim.usd:,.2f}"))
    needed_tps = claim.tokens / secs
    peak = g.peak_bf16_tflops * 1e12 * claim.gpus
    lines.append(
        f"  {human(claim.tokens)} tokens in {claim.duration_text()} needs {needed_tps:,.0f} tokens/s = {needed_tps * fl / 1e12:,.0f} TFLOPS "
        f"sustained ({fl / 1e9:.2f} GFLOPs/token at seq {claim.seq_len}), {needed_tps * fl / peak:.1f}x the whole "
        f"{g.peak_bf16_tflops * claim.gpus:g} TFLOPS peak of {on}"
    )
    feasible = mfu * peak / fl
    lines.append(
        f"  what {on} does at {mfu:.0%} MFU: {feasible:,.0f} tokens/s -> {human(claim.tokens)} tokens in "
        f"{duration(claim.tokens / feasible)}; in {claim.duration_text()} {human(feasible * secs)} tokens"
        + (f", ${claim.tokens / feasible / 3600 * claim.gpus * claim.usd_per_gpu_hour:,.2f} at ${claim.usd_per_gpu_hour:g}/GPU-hour"
           if claim.usd_per_gpu_hour is not None else "")
    )
    h100 = find_gpu("h100").peak_bf16_tflops * 1e12
    lines.append(f"  {human(claim.tokens)} tokens in {claim.duration_text()} at {mfu:.0%} MFU takes "
                 f"{math.ceil(needed_tps * fl / (mfu * h100))} H100s")
    if claim.note:
        lines.append(f"  note: {claim.note}")
    return "\n".join(lines)


def plan_claim_report(phase, mfu: float = 0.4) -> str:
    """The phase's own [plan_claim] checked, or a line saying it has none."""
    if phase.plan_claim is None:
        return f"plan: the seed plan states no time or cost figure for phase {phase.phase.name!r} (no [plan_claim] in {phase.path})"
    return check(phase.plan_claim, mfu=mfu)  # the plan's figures are about the plan's model
