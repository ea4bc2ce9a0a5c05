"""Evaluation pieces that need no model runtime (torch-free): held-out planning problems and their
scoring by the procedural checkers, long-context probes, confidence intervals, the eval report.

The model side (loss, generation, lm-evaluation-harness) lives in the engine: `titan eval`.
"""
