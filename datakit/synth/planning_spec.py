"""synth/planning.toml -> a validated PlanningSpec; every error names file, field and fix."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from datakit.errors import UserError
from datakit.strict import Strict
from datakit.synth.prices import Price, resolve_price
from datakit.synth.quota import Quota

DEFAULT_SPEC = Path("synth/planning.toml")


class PlanningSettings(Strict):
    max_tokens: int = Field(4096, gt=0)  # cap per answer; the budget reserves it
    expected_output_tokens: int = Field(1500, gt=0)  # dry-run estimate
    min_steps: int = Field(3, ge=1)  # numbered steps required in <thinking>
    near_dup_threshold: float = Field(0.7, gt=0, le=1)  # MinHash Jaccard of near-duplicate problems
    concurrency: int = Field(16, ge=1)
    temperature: float | None = 0.9
    timeout_s: float = Field(180.0, gt=0)  # per request; a timed-out request is charged at worst case
    max_attempts: int = Field(6, ge=1)
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    batch_size: int = Field(1000, ge=1)  # requests per Batch API job (--batch)
    batch_poll_s: float = Field(60.0, gt=0)  # seconds between status checks of a batch job


class PlanClaim(Strict):
    budget_usd: float
    price_usd_per_1k_tokens: float
    claimed_tokens: str


class Prompt(Strict):
    system: str
    user: str


class Diversity(Strict):
    constraints: list[str] = Field(min_length=1)
    scales: list[str] = Field(min_length=1)
    personas: list[str] = Field(min_length=1)


class Domain(Strict):
    name: str
    tasks: list[str] = Field(min_length=1)


class ProviderProfile(Strict):
    model: str | None = None  # litellm model string
    deployment: str | None = None  # Azure deployment (model = azure/<deployment>)
    price_model: str | None = None  # model whose list price applies
    price_in_usd_per_mtok: float | None = None
    price_out_usd_per_mtok: float | None = None
    price_source: str | None = None  # where explicit prices come from: a dated citation
    max_tokens: int | None = Field(None, gt=0)  # this model's cap per answer (reasoning models), else planning.max_tokens
    expected_output_tokens: int | None = Field(None, gt=0)  # this model's dry-run estimate, else planning's
    api_base: str | None = None
    api_version: str | None = None
    api_key_env: str | None = None
    api_base_env: str | None = None
    api_version_env: str | None = None
    api_key_optional: bool = False
    batch: bool = False
    extra: dict = Field(default_factory=dict)  # more litellm kwargs
    # The deployment's quota (datakit/synth/quota.py). None: not paced; 429 Retry-After and
    # x-ratelimit-* headers are honoured either way, by every worker of the run.
    rpm: float | None = Field(None, gt=0)  # requests per minute
    tpm: float | None = Field(None, gt=0)  # tokens per minute
    tpm_counts: Literal["max_tokens", "usage"] | None = None  # what TPM counts; default by provider

    @model_validator(mode="after")
    def _model(self) -> "ProviderProfile":
        if not self.model and not self.deployment:
            raise ValueError("set model (a litellm model string) or deployment (Azure)")
        return self

    def litellm_model(self) -> str:
        return self.model or f"azure/{self.deployment}"

    def quota(self, folder: str | Path, model: str | None = None) -> Quota:
        """This profile's RPM/TPM schedule in `folder`, shared by every worker process of the run."""
        return Quota(folder, model or self.litellm_model(), rpm=self.rpm, tpm=self.tpm, tpm_counts=self.tpm_counts)


class PlanningSpec(Strict):
    planning: PlanningSettings = Field(default_factory=PlanningSettings)
    plan_claim: PlanClaim | None = None
    prompt: Prompt
    diversity: Diversity
    domain: list[Domain] = Field(min_length=1)
    provider: dict[str, ProviderProfile] = Field(default_factory=dict)
    path: str = ""

    def profile(self, name: str) -> ProviderProfile:
        if name not in self.provider:
            raise UserError(
                f"no provider profile named {name!r}",
                file=self.path,
                field="provider",
                fix=f"use one of {sorted(self.provider)} or add [provider.{name}] to the spec",
            )
        return self.provider[name]

    def price_for(self, name: str, model: str | None = None) -> Price:
        """The price of provider `name` (with an optional model override); UserError if unknown."""
        p = self.profile(name)
        model = model or p.litellm_model()
        own = model == p.litellm_model()
        price_model = p.price_model if own else None
        if not own:  # --model: the profile's cited prices are for its own model; litellm's map knows others
            from datakit.synth.prices import litellm_price

            known = litellm_price(model)
            if known is not None:
                return known
        price = resolve_price(
            model,
            price_model=price_model,
            in_usd_per_mtok=p.price_in_usd_per_mtok,
            out_usd_per_mtok=p.price_out_usd_per_mtok,
            file=self.path,
            field=f"provider.{name}.price_in_usd_per_mtok",
        )
        if price.source == "spec" and p.price_source:
            price = dataclasses.replace(price, source=f"spec: {p.price_source}")
        return price

    def max_tokens_for(self, name: str) -> int:
        """Cap per answer for provider `name`: its profile's, else [planning] max_tokens."""
        return self.profile(name).max_tokens or self.planning.max_tokens

    def expected_output_tokens_for(self, name: str) -> int:
        return self.profile(name).expected_output_tokens or self.planning.expected_output_tokens


class Credentials:
    """API key, base URL and version read from the environment. The key is kept out of repr and str."""

    def __init__(self, api_key: str | None, api_base: str | None, api_version: str | None):
        self.api_key = api_key
        self.api_base = api_base
        self.api_version = api_version

    def __repr__(self) -> str:
        return f"Credentials(api_key={'***' if self.api_key else None}, api_base={self.api_base!r}, api_version={self.api_version!r})"

    __str__ = __repr__


def credentials_for(spec: PlanningSpec, name: str, model: str | None = None) -> Credentials:
    """Read the provider's credentials from the environment; UserError before any request if missing."""
    p = spec.profile(name)
    key = os.environ.get(p.api_key_env, "") if p.api_key_env else ""
    if not key and not p.api_key_optional:
        raise UserError(
            f"{p.api_key_env or 'an API key variable'} is not set; no request was made",
            file=spec.path,
            field=f"provider.{name}.api_key_env",
            fix=f"export {p.api_key_env}=<your key> (keys are read from the environment only)",
        )
    base = (os.environ.get(p.api_base_env, "") if p.api_base_env else "") or p.api_base
    version = (os.environ.get(p.api_version_env, "") if p.api_version_env else "") or p.api_version
    if (model or p.litellm_model()).startswith("azure/") and not base:
        raise UserError(
            f"{p.api_base_env or 'AZURE_API_BASE'} is not set; no request was made",
            file=spec.path,
            field=f"provider.{name}.api_base_env",
            fix=f"export {p.api_base_env or 'AZURE_API_BASE'}=https://<resource>.openai.azure.com",
        )
    if not key and p.api_key_optional:
        key = "not-needed"  # local servers ignore the key, but the OpenAI client insists on one
    return Credentials(key or None, base or None, version or None)


def load_planning_spec(path: str | Path = DEFAULT_SPEC) -> PlanningSpec:
    """Read and validate synth/planning.toml."""
    path = Path(path)
    if not path.exists():
        raise UserError("spec file not found", file=str(path), fix="run from the repository root or pass --spec synth/planning.toml")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"not valid TOML: {e}", file=str(path), fix="fix the TOML syntax") from None
    try:
        spec = PlanningSpec.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        fix = "remove it or check its spelling against docs/synth-planning.md" if err["type"] == "extra_forbidden" else "see docs/synth-planning.md"
        raise UserError(err["msg"], file=str(path), field=field, fix=fix) from None
    spec.path = str(path)
    for field in ("system", "user"):
        template = getattr(spec.prompt, field)
        try:
            template.format(domain="d", task="t", constraint="c", scale="s", persona="p")
        except (KeyError, IndexError, ValueError) as e:
            raise UserError(
                f"template has an unknown placeholder {e}",
                file=str(path),
                field=f"prompt.{field}",
                fix="use only {domain} {task} {constraint} {scale} {persona}",
            ) from None
    return spec
