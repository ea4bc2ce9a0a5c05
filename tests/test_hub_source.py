"""hf:// sources go through datatrove's HuggingFaceDatasetReader and `datasets.load_dataset(streaming=True)`.

No hub is reachable in tests, so the repo id is a local dataset folder: the same loading code path."""

import shutil

from datakit.mix.build import build_mixture
from datakit.mix.stages import sample_rates
from datakit.samples import SAMPLES_DIR
from datakit.spec import load_spec


def test_hf_uri_streams_a_dataset_folder(tmp_path, smoke_tokenizer):
    repo = tmp_path / "gsm8k_repo"
    (repo / "data").mkdir(parents=True)
    for f in (SAMPLES_DIR / "openai__gsm8k" / "main").glob("train-*.parquet"):
        shutil.copy(f, repo / "data" / f.name)
    p = tmp_path / "hub.toml"
    p.write_text(
        f'[mixture]\nname = "hub"\ntokenizer = "{smoke_tokenizer}"\nvocab_size = 4096\noutput = "{tmp_path / "out"}"\nheldout_docs = 0\n'
        f'[[source]]\nname = "gsm8k"\nuri = "hf://{repo}"\nformat = "gsm8k"\ntokens = "all"\n'
    )
    spec = load_spec(p)
    assert sample_rates(spec) == {"gsm8k": 1.0}
    m = build_mixture(spec, progress=False)
    s = m.source("gsm8k")
    assert s.read_stats["docs_read"] == s.docs_available > 100
    assert s.tokens_written == s.tokens_available > 0
