from datakit.spec.mixture import MixtureSpec, SourceSpec, load_spec, parse_spec
from datakit.spec.sizes import human, parse_size

__all__ = ["MixtureSpec", "SourceSpec", "load_spec", "parse_spec", "human", "parse_size"]
