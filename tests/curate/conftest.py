"""Fixtures for the curation tests; the helpers live in curate_helpers.py."""

from curate_helpers import tiny_tokenizer  # noqa: F401  (a session fixture)
