"""Per-source filter steps: metadata expressions, datatrove's heuristic filters by name, and the
quality scorer, each wrapped so its removals and kept fractions land on record (records.py).

Heuristic filters (datatrove classes; every keyword of the class is settable in the spec):

    gopher_quality      GopherQualityFilter      (min/max words, mean word length, stop words...)
    gopher_repetition   GopherRepetitionFilter   (duplicate lines/paragraphs, top n-gram fractions)
    c4_quality          C4QualityFilter          (sentence/line rules of C4; needs no downloads)
    fineweb_quality     FineWebQualityFilter     (line punctuation, short lines, char duplicates)
    language            LanguageFilter           (fastText language id; needs `model_path` to a
                                                  local lid.176.bin: nothing is downloaded)

English word splitting in these filters is datatrove's spaCy blank tokenizer (no model download).
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
)
from datatrove.utils.lid import FT176LID

from datakit.curate.expressions import ExpressionFilter, check_columns, parse_expression
from datakit.curate.records import CountedStep, RemovalWriter, TokenCounter
from datakit.curate.spec import FilterSpec
from datakit.errors import UserError

HEURISTIC_FILTERS: dict[str, type] = {
    "gopher_quality": GopherQualityFilter,
    "gopher_repetition": GopherRepetitionFilter,
    "c4_quality": C4QualityFilter,
    "fineweb_quality": FineWebQualityFilter,
    "language": LanguageFilter,
}
# params the spec may not set: we own the exclusion writer; language's model is `model_path`
_RESERVED = {"self", "exclusion_writer", "batch_size", "backend"}
_EXTRA_PARAMS = {"language": {"model_path"}}


def allowed_params(name: str) -> list[str]:
    """Keyword arguments of the datatrove class behind `name` that a spec may set."""
    sig = inspect.signature(HEURISTIC_FILTERS[name].__init__)
    return sorted((set(sig.parameters) - _RESERVED) | _EXTRA_PARAMS.get(name, set()))


def check_params(name: str, params: dict, *, file: str, field: str) -> None:
    bad = sorted(set(params) - set(allowed_params(name)))
    if bad:
        raise UserError(
            f"unknown parameter(s) {', '.join(bad)} for {name} ({HEURISTIC_FILTERS[name].__name__})",
            file=file, field=field, fix=f"allowed: {', '.join(allowed_params(name))}",
        )
    if name == "language" and "model_path" not in params:
        raise UserError(
            "the language filter needs a local fastText language-id model", file=file, field=field,
            fix='download lid.176.bin once and write { name = "language", languages = ["en"], '
            'model_path = "models/lid.176.bin" }',
        )


def check_offline_dependencies(*, file: str, field: str) -> None:
    """The English word tokenizer datatrove uses (filters, MinHash, decontamination) is spaCy's
    blank pipeline, which needs the `spacy` package but no download."""
    if importlib.util.find_spec("spacy") is None:
        raise UserError(
            "datatrove's English word tokenizer needs the spacy package", file=file, field=field,
            fix="pip install spacy (no model download is needed: a blank English pipeline is used)",
        )


class LocalFastTextLID(FT176LID):
    """datatrove's fastText language id reading a local model file instead of downloading one."""

    def __init__(self, languages, model_path: str):
        super().__init__(languages)
        self.model_path = model_path

    @property
    def model(self):
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(self.model_path)
        return self._model


def make_heuristic(spec: FilterSpec, *, exclusion_writer, file: str) -> PipelineStep:
    params = dict(spec.params)
    cls = HEURISTIC_FILTERS[spec.name]
    model_path = params.pop("model_path", None)
    try:
        step = cls(**params, exclusion_writer=exclusion_writer)
    except ImportError as e:
        raise UserError(f"{spec.name} needs a package that is not installed: {e}", file=file, field=spec.field,
                        fix="pip install fasttext-numpy2-wheel fasteners" if spec.name == "language" else
                        "install the missing package") from None
    except (TypeError, ValueError) as e:
        raise UserError(f"bad parameters for {spec.name}: {e}", file=file, field=spec.field,
                        fix=f"allowed: {', '.join(allowed_params(spec.name))}") from None
    if model_path is not None:
        if not Path(model_path).is_file():
            raise UserError(f"language-id model {model_path} does not exist", file=file, field=spec.field,
                            fix="point model_path at a local fastText lid.176.bin")
        step.model = LocalFastTextLID(step.languages, str(model_path))
    return step


def build_filter_steps(
    filters: list[FilterSpec],
    *,
    source: str,
    file: str,
    columns: set[str] | None,
    records_dir: Path,
    tokenizer_path: str | None,
    sample: dict | None = None,
) -> list[PipelineStep]:
    """datatrove steps for a source's `filters`, in order, each recording its removals under
    `records_dir/removed/<source>/` and its docs/tokens in and out under `records_dir/steps/<source>/`.

    columns: the source's top-level columns; an expression on another column is a UserError here,
        before any processing (None skips the check).
    sample: optionally the first upstream record, to check nested expression paths too.
    tokenizer_path: the mixture tokenizer (tokenizer.json) used to count n_tokens; loaded lazily
        inside the worker. None records no token counts.
    """
    from datakit.curate.scoring import QualityScorer

    steps: list[PipelineStep] = []
    counter = TokenCounter(tokenizer_path)
    produced: set[str] = set()  # columns created by earlier steps (score / int_score)
    if any(f.kind == "heuristic" for f in filters):
        check_offline_dependencies(file=file, field=f"source.{source}.filters")
    for spec in filters:
        writer = RemovalWriter(records_dir, step=spec.step, folder=spec.folder, source=source, counter=counter)
        if spec.kind == "expression":
            expr = parse_expression(spec.params["expr"], file=file, field=spec.field)
            cols = None if columns is None else set(columns) | produced
            check_columns(expr, cols, file=file, field=spec.field,
                          sample=sample if expr.column not in produced else None)
            inner: PipelineStep = ExpressionFilter(expr, exclusion_writer=writer)
        elif spec.kind == "heuristic":
            inner = make_heuristic(spec, exclusion_writer=writer, file=file)
        else:
            inner = QualityScorer.from_spec(spec, file=file)
            produced |= {"score", "int_score"}
        steps.append(CountedStep(inner, records_dir=records_dir, step=spec.step, folder=spec.folder,
                                 order=spec.index, scope=source, source=source, counter=counter))
    return steps
