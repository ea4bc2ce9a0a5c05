"""A deterministic text sample of a spec's sources for tokenizer training.

Each source contributes bytes in proportion to its share of the mixture's target (at least 1%), read in
stream order through the build's own source steps (pipeline.source_steps: reader, hydration, formatter; the
per-source filters are left out), run in-process.
"""

from __future__ import annotations

from collections.abc import Iterator

from datakit.mix import pipeline as P
from datakit.mix.plan import catalog_availability, targets
from datakit.spec.mixture import MixtureSpec, SourceSpec


def source_texts(spec: MixtureSpec, src: SourceSpec) -> Iterator[str]:
    columns = P.check_source(spec, src)
    steps, _ = P.source_steps(spec, src, P.Work(spec.output), columns=columns, filters=False)
    docs = None
    for step in steps:
        docs = step(docs, rank=0, world_size=1)
    for doc in docs:
        yield doc.text


def byte_quotas(spec: MixtureSpec, sample_bytes: int) -> dict[str, int]:
    avail = {s.name: catalog_availability(s)[1] for s in spec.source}
    tgt = targets(spec, avail)
    total = sum(tgt.values()) or 1
    shares = {k: max(v / total, 0.01) if total > 1 else 1 / len(tgt) for k, v in tgt.items()}
    norm = sum(shares.values())
    return {k: int(sample_bytes * v / norm) for k, v in shares.items()}


def spec_sample(spec: MixtureSpec, sample_bytes: int, stats: dict | None = None) -> Iterator[str]:
    stats = stats if stats is not None else {}
    for src in spec.source:
        quota, used = byte_quotas(spec, sample_bytes)[src.name], 0
        for text in source_texts(spec, src):
            if used >= quota:
                break
            used += len(text.encode("utf-8", "ignore"))
            yield text
        stats[src.name] = used
