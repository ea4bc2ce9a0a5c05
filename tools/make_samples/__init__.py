"""Regenerate the embedded samples (datakit/samples/): small files with the exact upstream column schemas.

Run `python -m tools.make_samples [--out DIR]` from the repository root. The committed files under
datakit/samples/ are this tool's output; the runtime package only reads them. Output is byte-for-byte
deterministic for a given Python version (the text is drawn from the running interpreter's standard
library) and pyarrow version.

One module per upstream dataset (python-edu and stack-edu share one: one seeded draw of blobs);
common.py holds the seed, the seeded RNGs and the writers.

Where the text comes from (everything is public and available offline):
- English prose: `pydoc_data.topics` (the Python Language Reference as shipped with CPython) and the
  docstrings of standard-library modules, classes and functions (read with `ast`, never imported).
- Code: standard-library `.py` files, stored gzip-compressed in a local copy of the Software Heritage
  bucket layout (`softwareheritage/content/<blob_id>`), keyed by the git blob sha1 of the content.
- Math, gsm8k, orca-math, ARC, APPS, planning, boolq, math_dataset, smoltalk2 and HellaSwag records:
  generated from templates with a seeded RNG; every number in an answer is computed.

Nothing here is upstream data: the values are samples, only the schemas match upstream.
"""
