"""The `[curate]` table of a mixture spec and the per-source `filters = [...]` list, validated.

```toml
[curate]                       # mixture-wide steps, run after per-source filters
dedup = { exact = true, minhash = { threshold = 0.8, ngram = 5 } }
decontaminate = { against = ["gsm8k:test", "ai2_arc:ARC-Challenge:test", "apps:test"], ngram = 13 }

[[source]]
filters = ["metadata.score >= 3", "gopher_quality", { name = "gopher_repetition", dup_line_frac = 0.3 }]
```

Every problem is a `UserError` naming the file, the field (`curate.dedup.minhash.threshold`,
`source.<name>.filters[i]`), what is wrong and the fix, raised before any document is read.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from datakit.errors import UserError
from datakit.strict import Strict

# hashes a MinHash signature may use when buckets x hashes are derived from the threshold
MAX_DERIVED_HASHES = 128
# probability that a pair exactly at `threshold` Jaccard is caught, when buckets are derived
TARGET_RECALL_AT_THRESHOLD = 0.95


class MinhashSpec(Strict):
    """MinHash near-duplicate detection across all sources of a mixture.

    threshold: Jaccard similarity (of word `ngram` shingles) at which a pair of documents is
        caught with probability >= 0.95; buckets x hashes are derived from it unless given.
    ngram: words per shingle.
    num_buckets / hashes_per_bucket: LSH banding; a pair is a candidate when all hashes of one
        bucket agree. P(caught | Jaccard s) = 1 - (1 - s**hashes_per_bucket) ** num_buckets.
    seed: seed of the hash permutations; the same seed gives the same removals.
    """

    threshold: float = 0.8
    ngram: int = Field(5, ge=1)
    num_buckets: int | None = Field(None, gt=0)
    hashes_per_bucket: int | None = Field(None, gt=0)
    seed: int = Field(1, ge=0)

    @field_validator("threshold")
    @classmethod
    def _threshold_in_range(cls, v: float) -> float:
        if not (0.0 < v <= 1.0):
            raise ValueError("threshold must be in (0, 1]")
        return v

    @model_validator(mode="after")
    def _both_or_none(self) -> "MinhashSpec":
        if (self.num_buckets is None) != (self.hashes_per_bucket is None):
            raise ValueError("give both num_buckets and hashes_per_bucket, or neither (derived from threshold)")
        return self

    def banding(self) -> tuple[int, int]:
        """(num_buckets, hashes_per_bucket): given, or the steepest banding within 128 hashes that
        catches a pair at exactly `threshold` with probability >= 0.95."""
        if self.num_buckets is not None and self.hashes_per_bucket is not None:
            return self.num_buckets, self.hashes_per_bucket
        return derive_banding(self.threshold)

    def detection_probability(self, jaccard: float) -> float:
        b, r = self.banding()
        return 1.0 - (1.0 - jaccard**r) ** b


def derive_banding(threshold: float) -> tuple[int, int]:
    """Largest r (fewest false positives) with b*r <= 128 hashes such that a pair at `threshold` is
    caught with probability >= 0.95: b = ceil(log(0.05) / log(1 - t**r))."""
    best = (MAX_DERIVED_HASHES, 1)
    for r in range(1, MAX_DERIVED_HASHES + 1):
        p_bucket = threshold**r
        if p_bucket >= 1.0:
            b = 1
        elif p_bucket < 1e-9:
            break
        else:
            b = math.ceil(math.log(1 - TARGET_RECALL_AT_THRESHOLD) / math.log(1 - p_bucket))
        if b * r <= MAX_DERIVED_HASHES:
            best = (b, r)
    return best


class DedupSpec(Strict):
    """exact: drop documents whose normalized text (lowercase, whitespace and punctuation folded)
    is identical to an earlier one; minhash: near-duplicate removal (see MinhashSpec)."""

    exact: bool = True
    minhash: MinhashSpec | None = None


class DecontaminateSpec(Strict):
    """Drop training documents sharing an `ngram`-word n-gram with any item of the `against`
    evaluation sets ("<benchmark>[:<config>]:<split>", e.g. "ai2_arc:ARC-Challenge:test").

    files: local files (jsonl, jsonl.gz, json, parquet) in the upstream schema, per eval set name;
        a set without a file is read from the local `datasets` cache (never downloaded).
    """

    against: list[str] = Field(default_factory=list)
    ngram: int = Field(13, ge=1)
    files: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_sets(self) -> "DecontaminateSpec":
        from datakit.curate.evalsets import parse_eval_name

        for name in self.against:
            parse_eval_name(name)  # raises ValueError with the known names
        for name in self.files:
            if name not in self.against:
                raise ValueError(f"files names {name!r}, which is not in against={self.against}")
        return self


class CurateSpec(Strict):
    """The mixture-level `[curate]` table."""

    dedup: DedupSpec = Field(default_factory=lambda: DedupSpec(exact=False))
    decontaminate: DecontaminateSpec | None = None

    @classmethod
    def from_toml(cls, table: dict[str, Any] | None, *, file: str) -> "CurateSpec":
        """Validate the raw `[curate]` table; errors name `curate.<field>` and the fix."""
        try:
            return cls.model_validate(table or {})
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
            field = "curate" + (f".{loc}" if loc else "")
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {err['loc'][-1]!r}"
            raise UserError(msg, file=file, field=field, fix=_CURATE_FIX) from None


_CURATE_FIX = (
    'write e.g. dedup = { exact = true, minhash = { threshold = 0.8, ngram = 5 } } and '
    'decontaminate = { against = ["gsm8k:test"], ngram = 13 }; see docs/curation.md'
)


# ---------------------------------------------------------------- per-source filters


class FilterSpec(Strict):
    """One entry of a source's `filters` list.

    kind: "expression" (a comparison on a metadata column), "heuristic" (a datatrove filter by
        name) or "score" (the quality classifier that writes `score` / `int_score`).
    name: the filter name ("gopher_quality", ...) or, for expressions, the column path.
    params: keyword arguments for the datatrove class / scorer.
    label: how the user wrote it; used as the step name in removal records and reports.
    index: position in the list (removal records keep per-position steps apart).
    """

    kind: Literal["expression", "heuristic", "score"]
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str
    index: int
    field: str  # e.g. "source.fineweb-edu.filters[0]"

    @property
    def step(self) -> str:
        """Step name on record (the label as written)."""
        return self.label

    @property
    def folder(self) -> str:
        """Folder name of this step's records: `f<index>_<name>`, unique within a source."""
        return f"f{self.index:02d}_" + "".join(c if c.isalnum() else "_" for c in self.name)
