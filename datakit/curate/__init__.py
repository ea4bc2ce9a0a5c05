"""Curation: per-source quality filters and scoring, mixture-wide exact + MinHash dedup and
benchmark decontamination, all on datatrove blocks, every removal on record.

    parse_filters(entries, file=, source=)            -> [FilterSpec]     (filter_list.py)
    build_filter_steps(filters, source=, file=, ...)  -> [PipelineStep]   (filters.py)
    CurateSpec.from_toml(table, file=)                -> CurateSpec       (spec.py)
    run_curation(curate, inputs=, outputs=, ...)      -> summary dict     (run.py)
    load_removed(records_dir) / load_step_stats(records_dir) / duckdb_views_sql(records_dir)
"""

from datakit.curate.records import duckdb_views_sql, load_removed, load_step_stats
from datakit.curate.spec import CurateSpec, FilterSpec


def parse_filters(*args, **kwargs):
    from datakit.curate.filter_list import parse_filters as _parse

    return _parse(*args, **kwargs)


def build_filter_steps(*args, **kwargs):
    from datakit.curate.filters import build_filter_steps as _build

    return _build(*args, **kwargs)


def run_curation(*args, **kwargs):
    from datakit.curate.run import run_curation as _run

    return _run(*args, **kwargs)


__all__ = ["CurateSpec", "FilterSpec", "build_filter_steps", "duckdb_views_sql", "load_removed",
           "load_step_stats", "parse_filters", "run_curation"]
