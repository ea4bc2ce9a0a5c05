"""Contract 1: a mixture spec (TOML) -> validated `MixtureSpec`.

Every error names the file, the field (`source.<name>.<field>`) and the fix; malformed TOML shows the line.
Unknown keys are an error, never ignored. Paths in the spec are relative to the current directory
(the repository root in the README's commands); `samples://<rel>` points into datakit's embedded samples.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from datakit.errors import UserError
from datakit.sources.formatters import is_example_format
from datakit.spec.sizes import parse_size
from datakit.strict import StrictTypes

DEFAULT_MAX_EPOCHS = 4.0
MIN_SEQ_LEN = 8  # `<s>`, a few tokens, `</s>`: anything shorter cannot hold a document
MAX_SEQ_LEN = 8192  # the longest context of the model this data is for (engine presets' max_seq_len)
MIN_SHARD_TOKENS = 1000  # smaller shards would mean a file per document or two
MAX_SEED = 2**63 - 1  # TOML integers are signed 64-bit


def _at_least(minimum: int, hint: str = ""):
    """After-validator for parsed sizes: None and "all" pass, integers must be >= minimum."""

    def check(v: Any) -> Any:
        if isinstance(v, int) and v < minimum:
            raise ValueError(f"must be >= {minimum:,}{hint}, got {v:,}")
        return v

    return check


class HydrateSpec(StrictTypes):
    """Fetch text for rows that ship only a blob id (python-edu, stack-edu) from Software Heritage."""

    url: str = "s3://softwareheritage/content/{blob_id}"
    id_column: str = "blob_id"
    encoding_column: str = "src_encoding"
    storage_options: dict[str, Any] = Field(default_factory=dict)
    cache_dir: str | None = None  # default: <output>/.work/blobs


class ContextSpec(StrictTypes):
    """Long context for SFT/DPO examples: documents of other sources placed after `<s>` before the prompt."""

    sources: list[str]  # names of sources in this spec (plain-text formats) to draw context documents from
    max_tokens: int | None = None  # default: fill each example up to seq_len
    separator: str = "\n\n"

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return None if v is None else parse_size(v)

    _max_tokens = field_validator("max_tokens")(lambda cls, v: _at_least(1)(v))


class SourceSpec(StrictTypes):
    name: str
    uri: str  # hf://repo, file://glob, samples://glob, synth://dir
    config: str | None = None
    split: str = "train"
    revision: str | None = None  # hf:// only; pinned in the manifest (resolved to a commit when possible)
    format: str = "text"
    tokens: int | Literal["all"] | None = None
    weight: float | None = None
    max_epochs: float = DEFAULT_MAX_EPOCHS
    filters: list[str | dict[str, Any]] = Field(default_factory=list)
    hydrate: HydrateSpec | None = None
    context: ContextSpec | None = None  # only for format = "sft" | "dpo"
    tokens_available: int | None = None  # override for hf:// sources the catalog does not know
    docs_available: int | None = None
    tasks: int | None = Field(None, ge=1)  # datatrove tasks reading this source (default: one per file / hub shard)
    heldout_docs: int | None = Field(None, ge=0)  # documents set aside for eval (default: [mixture] heldout_docs)

    _available_range = field_validator("tokens_available", "docs_available")(lambda cls, v: _at_least(1)(v))

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v):
            raise ValueError("use letters, digits, '-', '_', '.' (it becomes a folder name)")
        return v

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        if not re.match(r"^(hf|file|samples|synth)://.+", v):
            raise ValueError("must start with hf://, file://, samples:// or synth:// (e.g. hf://HuggingFaceTB/finemath)")
        return v

    @field_validator("tokens", "tokens_available", "docs_available", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        if v is None or v == "all":
            return v
        return parse_size(v)

    @field_validator("max_epochs")
    @classmethod
    def _epochs(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be > 0 (1 = no repetition)")
        return v

    @field_validator("weight")
    @classmethod
    def _weight(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("must be > 0")
        return v

    @model_validator(mode="after")
    def _tokens_or_weight(self) -> "SourceSpec":
        if (self.tokens is None) == (self.weight is None):
            raise ValueError("give exactly one of `tokens` (e.g. \"15B\" or \"all\") and `weight` (e.g. 0.3)")
        return self

    @property
    def scheme(self) -> str:
        return self.uri.split("://", 1)[0]

    @property
    def location(self) -> str:
        return self.uri.split("://", 1)[1]


class MixtureSection(StrictTypes):
    name: str
    seq_len: int = Field(2048, ge=MIN_SEQ_LEN, le=MAX_SEQ_LEN)
    total_tokens: int | None = None
    tokenizer: str
    vocab_size: int = 65536
    output: str
    seed: int = Field(1234, ge=0, le=MAX_SEED)
    shard_tokens: int = 100_000_000  # max tokens per output shard
    # documents per source set aside for eval, never trained on (datakit.mix.heldout; at most a tenth of a source)
    heldout_docs: int = Field(8, ge=0)

    @field_validator("total_tokens", "shard_tokens", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return None if v is None else parse_size(v)

    _total_range = field_validator("total_tokens")(lambda cls, v: _at_least(1)(v))
    _shard_range = field_validator("shard_tokens")(lambda cls, v: _at_least(MIN_SHARD_TOKENS)(v))

    @field_validator("vocab_size")
    @classmethod
    def _vocab(cls, v: int) -> int:
        if not 256 < v <= 2**32:
            raise ValueError("must be between 257 and 2^32")
        return v


class TokenizerTrainSection(StrictTypes):
    """How `datakit tokenizer train` samples this spec's sources."""

    sample_bytes: int = 1_000_000_000
    min_frequency: int = Field(2, ge=1)

    @field_validator("sample_bytes", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return parse_size(v)

    _sample_range = field_validator("sample_bytes")(lambda cls, v: _at_least(1000)(v))


class MixtureSpec(StrictTypes):
    mixture: MixtureSection
    tokenizer_train: TokenizerTrainSection = Field(default_factory=TokenizerTrainSection)
    curate: dict[str, Any] | None = None  # validated by datakit.curate.spec.CurateSpec
    source: list[SourceSpec]

    # not part of the TOML: where it came from
    path: str = Field(default="<spec>", exclude=True)
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="after")
    def _unique(self) -> "MixtureSpec":
        # cross-field rules: raised as UserError here (pydantic passes it through) to name the field
        seen = set()
        for s in self.source:
            if s.name in seen:
                raise UserError(f"two sources are named {s.name!r}; names must be unique", file=self.path,
                                field=f"source.{s.name}.name", fix="rename one of them (the name becomes a folder)")
            seen.add(s.name)
        names = {s.name: s for s in self.source}
        for s in self.source:
            if s.context is None:
                continue
            if not is_example_format(s.format):
                raise UserError("`context` applies to format \"sft\" or \"dpo\" only", file=self.path, field=f"source.{s.name}.context",
                                fix="remove it, or set format = \"sft\" / \"dpo\" on a source of Contract 3 records")
            for c in s.context.sources:
                if c not in names or is_example_format(names[c].format) or c == s.name:
                    raise UserError(f"context source {c!r} must be another plain-text source of this spec", file=self.path,
                                    field=f"source.{s.name}.context.sources", fix=f"use names of this spec's text sources: {sorted(names)}")
        if any(s.weight is not None for s in self.source) and self.mixture.total_tokens is None:
            raise UserError("sources use `weight`, so [mixture] needs `total_tokens`", file=self.path, field="mixture.total_tokens",
                            fix="add total_tokens = \"50B\" (for example) to [mixture], or give each source tokens instead of weight")
        return self

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def output(self) -> Path:
        return Path(self.mixture.output)

    def get(self, name: str) -> SourceSpec:
        for s in self.source:
            if s.name == name:
                return s
        raise UserError(f"no source named {name!r}", file=self.path, fix=f"use one of {[s.name for s in self.source]}")


_RANGE = "use a value in the allowed range (docs/mixtures.md lists every field)"
_FIXES = {
    "extra_forbidden": "remove it or check its spelling against docs/mixtures.md",
    "missing": "add it",
    **{t: _RANGE for t in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number")},
}


def _field_path(data: dict, loc: tuple) -> str:
    """('source', 2, 'tokens') -> 'source.gsm8k.tokens' (by name when the entry has one)."""
    parts: list[str] = []
    node: Any = data
    for i, key in enumerate(loc):
        if isinstance(key, int) and isinstance(node, list) and key < len(node):
            item = node[key]
            parts[-1:] = [f"{parts[-1]}.{item['name']}" if isinstance(item, dict) and isinstance(item.get("name"), str) else f"{parts[-1]}[{key}]"]
            node = item
            continue
        parts.append(str(key))
        node = node.get(key) if isinstance(node, dict) else None
    return ".".join(p for p in parts if p not in ("int", "str", "function-after[_size(), union[int,literal['all']]]"))


def load_spec(path: str | Path) -> MixtureSpec:
    """Read and validate a mixture spec; raise UserError with file, field and fix on any problem."""
    path = Path(path)
    if not path.exists():
        raise UserError("spec file not found", file=path, fix="check the path (specs live in mixtures/)")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"malformed TOML: {e}", file=path, fix="fix the syntax at that line") from e
    return parse_spec(data, path=str(path))


def parse_spec(data: dict, path: str = "<spec>") -> MixtureSpec:
    if "source" not in data or not data.get("source"):
        raise UserError("no [[source]] tables", file=path, field="source", fix="add at least one [[source]] with name, uri, format and tokens or weight")
    try:
        spec = MixtureSpec.model_validate({**data, "path": path, "raw": data})
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(x for x in err["loc"] if x not in ("path", "raw"))
        field = _field_path(data, loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise UserError(msg, file=path, field=field, fix=_FIXES.get(err["type"], "see docs/mixtures.md for the field's form")) from None
    if spec.curate is not None:
        spec.curate = validate_curate(spec.curate, path)
    for s in spec.source:  # filter names, parameters and expressions: refused before anything is written
        if s.filters:
            from datakit.curate.filter_list import parse_filters

            parse_filters(s.filters, file=path, source=s.name)
    return spec


def validate_curate(curate: dict, path: str) -> Any:
    """Validate [curate] with the curation module's own model (it owns those fields)."""
    from datakit.curate.spec import CurateSpec

    return CurateSpec.from_toml(curate, file=path)
