"""Records the id of every document a task sees, in order, so datatrove's dedup outputs (which
name documents by task rank and position) can be turned back into document ids."""

from __future__ import annotations

import json
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from datakit.curate.records import write_jsonl_atomic


class RecordIds(PipelineStep):
    """Pass-through step writing `<folder>/<rank>.jsonl` (one JSON id string per line) at task end."""

    name = "🪪 Record ids"
    type = "📝 - IDS"

    def __init__(self, folder: Path | str):
        super().__init__()
        self.folder = str(folder)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        ids = []
        for doc in data:
            ids.append(doc.id)
            yield doc
        write_jsonl_atomic(Path(self.folder) / f"{rank:05d}.jsonl", ids)  # type: ignore[arg-type]


def read_ids(folder: Path, rank: int) -> list[str]:
    path = Path(folder) / f"{rank:05d}.jsonl"
    if not path.exists():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class DupOfLookup:
    """Removal reason for dedup steps: ("duplicate", id of the kept document), from a JSON map
    {removed id: kept id} loaded lazily in the worker."""

    def __init__(self, map_path: Path | str):
        self.map_path = str(map_path)
        self._map: dict[str, str] | None = None

    def __getstate__(self):
        return {"map_path": self.map_path, "_map": None}

    def __call__(self, doc) -> tuple[str, str | None]:
        if self._map is None:
            with open(self.map_path) as f:
                self._map = json.load(f)
        return "duplicate", self._map.get(doc.id)
