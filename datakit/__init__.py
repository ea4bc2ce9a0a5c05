"""datakit: build curated, token-accounted training mixtures and synthetic planning data."""

__version__ = "0.1.0"
