"""Quality scoring: a local FineWeb-Edu-style classifier writes `score` and `int_score`.

The model is any Hugging Face sequence-classification model with a one-output regression head
(the format of HuggingFaceTB/fineweb-edu-classifier): `score` = the raw regression output,
`int_score` = round(clamp(score, 0, 5)). Both go into the document's metadata, so later filters in
the same list can use them: `filters = [{ name = "quality_score", model = "models/fineweb-edu-classifier" },
"int_score >= 3"]`.

The model is loaded lazily inside the worker (torch and transformers are imported only there), from
a local folder only: nothing is downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched

from datakit.curate.spec import FilterSpec
from datakit.errors import UserError

SCORER_NAME = "quality_score"
SCORER_PARAMS = ("model", "batch_size", "max_length", "device")


class QualityScorer(PipelineStep):
    """Writes metadata `score` / `int_score` from a local regression classifier.

    model: folder with config.json, weights and tokenizer (save_pretrained output).
    batch_size: documents per forward pass. max_length: tokens per document seen by the model
    (the text is truncated, as the FineWeb-Edu annotations were). device: "cpu", "cuda", ...
    """

    name = "🏅 Quality score"
    type = "📊 - SCORER"

    def __init__(self, model: str, batch_size: int = 32, max_length: int = 512, device: str = "cpu"):
        super().__init__()
        self.model_path = str(model)
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self._model = None
        self._tok = None

    @classmethod
    def from_spec(cls, spec: FilterSpec, *, file: str) -> "QualityScorer":
        model = Path(spec.params["model"])
        if not (model / "config.json").is_file():
            raise UserError(
                f"quality model folder {model} has no config.json", file=file, field=spec.field,
                fix="download the classifier once, e.g. `huggingface-cli download "
                "HuggingFaceTB/fineweb-edu-classifier --local-dir models/fineweb-edu-classifier`, "
                "and set model to that folder",
            )
        for key in ("batch_size", "max_length"):
            if key in spec.params and (not isinstance(spec.params[key], int) or spec.params[key] <= 0):
                raise UserError(f"{key} must be a positive integer", file=file, field=spec.field,
                                fix=f"e.g. {key} = 32")
        return cls(**spec.params)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_model"] = state["_tok"] = None
        return state

    def _load(self):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
        self._model = AutoModelForSequenceClassification.from_pretrained(self.model_path, local_files_only=True)
        self._model.to(self.device).eval()

    def score_texts(self, texts: list[str]) -> list[float]:
        import torch

        if self._model is None:
            self._load()
        enc = self._tok(texts, return_tensors="pt", padding="longest", truncation=True, max_length=self.max_length)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            logits = self._model(**enc).logits
        return logits.squeeze(-1).float().cpu().tolist()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                scores = self.score_texts([doc.text for doc in batch])
            for doc, score in zip(batch, scores):
                doc.metadata["score"] = float(score)
                doc.metadata["int_score"] = int(round(max(0.0, min(float(score), 5.0))))
                self.stat_update("scored")
                yield doc
