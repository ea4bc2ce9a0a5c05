"""Hidden-case resistance (issue 16): malformed mixture specs, field by field (wrong type, out of range,
unknown, missing), each through the real CLI entry point: exit 2, one line `error: <file>: <field>: ...
(fix: ...)`, no traceback, nothing written. (The engine's phase files: engines/titan/tests/test_titan_malformed.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from datakit.spec import load_spec

BASE = """\
[mixture]
name = "m"
seq_len = 256
tokenizer = "tok/tokenizer.json"
vocab_size = 4096
output = "out"
seed = 1234
shard_tokens = "200K"

[tokenizer_train]
sample_bytes = "3M"
min_frequency = 2

[curate]
dedup = { exact = true, minhash = { threshold = 0.8, ngram = 5, seed = 1 } }
decontaminate = { against = ["gsm8k:test"], ngram = 13 }

[[source]]
name = "gsm8k"
uri = "samples://openai__gsm8k/main/train-*.parquet"
format = "gsm8k"
tokens = "all"
max_epochs = 3

[[source]]
name = "fineweb"
uri = "samples://HuggingFaceTB__smollm-corpus/fineweb-edu-dedup/train-*.parquet"
format = "fineweb-edu"
tokens = "20K"
filters = ["metadata.score > 0.7"]
"""

GSM = 'name = "gsm8k"\n'
FW = 'name = "fineweb"\n'

# (case id, text to replace, replacement, field named in the error; None: a file-level error)
CASES = [
    # [mixture]
    ("name-missing", 'name = "m"\n', "", "mixture.name"),
    ("name-type", 'name = "m"\n', "name = 12\n", "mixture.name"),
    ("seq_len-zero", "seq_len = 256", "seq_len = 0", "mixture.seq_len"),
    ("seq_len-negative", "seq_len = 256", "seq_len = -256", "mixture.seq_len"),
    ("seq_len-too-long", "seq_len = 256", "seq_len = 100_000", "mixture.seq_len"),
    ("seq_len-type", "seq_len = 256", 'seq_len = "long"', "mixture.seq_len"),
    ("seq_len-float", "seq_len = 256", "seq_len = 2.5", "mixture.seq_len"),
    ("seq_len-numeric-string", "seq_len = 256", 'seq_len = "256"', "mixture.seq_len"),
    ("total_tokens-type", "seed = 1234", 'seed = 1234\ntotal_tokens = "lots"', "mixture.total_tokens"),
    ("total_tokens-negative", "seed = 1234", "seed = 1234\ntotal_tokens = -5", "mixture.total_tokens"),
    ("total_tokens-zero", "seed = 1234", "seed = 1234\ntotal_tokens = 0", "mixture.total_tokens"),
    ("tokenizer-missing", 'tokenizer = "tok/tokenizer.json"\n', "", "mixture.tokenizer"),
    ("vocab_size-range", "vocab_size = 4096", "vocab_size = 10", "mixture.vocab_size"),
    ("vocab_size-type", "vocab_size = 4096", 'vocab_size = "4k"', "mixture.vocab_size"),
    ("output-missing", 'output = "out"\n', "", "mixture.output"),
    ("seed-negative", "seed = 1234", "seed = -1", "mixture.seed"),
    ("seed-type", "seed = 1234", 'seed = "x"', "mixture.seed"),
    ("shard_tokens-tiny", 'shard_tokens = "200K"', "shard_tokens = 10", "mixture.shard_tokens"),
    ("shard_tokens-inf", 'shard_tokens = "200K"', "shard_tokens = inf", "mixture.shard_tokens"),
    ("mixture-unknown", "seed = 1234", "seed = 1234\ncolour = 1", "mixture.colour"),
    ("table-unknown", "[tokenizer_train]", "[tokenizer_trian]", "tokenizer_trian"),
    # [tokenizer_train]
    ("sample_bytes-zero", 'sample_bytes = "3M"', "sample_bytes = 0", "tokenizer_train.sample_bytes"),
    ("sample_bytes-type", 'sample_bytes = "3M"', 'sample_bytes = "a lot"', "tokenizer_train.sample_bytes"),
    ("min_frequency-zero", "min_frequency = 2", "min_frequency = 0", "tokenizer_train.min_frequency"),
    # [curate]
    ("minhash-threshold", "threshold = 0.8", "threshold = 2.0", "curate.dedup.minhash.threshold"),
    ("minhash-threshold-nan", "threshold = 0.8", "threshold = nan", "curate.dedup.minhash.threshold"),
    ("minhash-seed", "ngram = 5, seed = 1", "ngram = 5, seed = -1", "curate.dedup.minhash.seed"),
    ("minhash-ngram", "ngram = 5,", "ngram = 0,", "curate.dedup.minhash.ngram"),
    ("decontaminate-ngram", "ngram = 13", "ngram = 0", "curate.decontaminate.ngram"),
    ("decontaminate-set", '["gsm8k:test"]', '["gsm9k:test"]', "curate.decontaminate"),
    ("curate-unknown", "dedup = {", "dedupe = {", "curate.dedupe"),
    # [[source]]
    ("sources-none", BASE[BASE.index("[[source]]"):], "", "source"),
    ("source-name-missing", GSM, "", "source[0].name"),
    ("source-name-bad", GSM, 'name = "gsm/8k"\n', "source.gsm/8k.name"),
    ("source-name-duplicate", FW, GSM, "source.gsm8k.name"),
    ("uri-scheme", 'uri = "samples://openai__gsm8k/main/train-*.parquet"', 'uri = "http://example.com/x.parquet"', "source.gsm8k.uri"),
    ("uri-missing", 'uri = "samples://openai__gsm8k/main/train-*.parquet"\n', "", "source.gsm8k.uri"),
    ("tokens-type", 'tokens = "all"', 'tokens = "many"', "source.gsm8k.tokens"),
    ("tokens-bool", 'tokens = "all"', "tokens = true", "source.gsm8k.tokens"),
    ("tokens-negative", 'tokens = "20K"', "tokens = -20", "source.fineweb.tokens"),
    ("tokens-and-weight", 'tokens = "20K"', 'tokens = "20K"\nweight = 0.5', "source.fineweb"),
    ("tokens-nor-weight", 'tokens = "20K"\n', "", "source.fineweb"),
    ("weight-negative", 'tokens = "20K"', "weight = -1.0", "source.fineweb.weight"),
    ("weight-nan", 'tokens = "20K"', "weight = nan", "source.fineweb.weight"),
    ("weight-without-total", 'tokens = "20K"', "weight = 0.5", "mixture.total_tokens"),
    ("max_epochs-zero", "max_epochs = 3", "max_epochs = 0", "source.gsm8k.max_epochs"),
    ("max_epochs-inf", "max_epochs = 3", "max_epochs = inf", "source.gsm8k.max_epochs"),
    ("max_epochs-string", "max_epochs = 3", 'max_epochs = "3"', "source.gsm8k.max_epochs"),
    ("source-unknown", "max_epochs = 3", "max_epochs = 3\nfilter = []", "source.gsm8k.filter"),
    ("tasks-zero", "max_epochs = 3", "max_epochs = 3\ntasks = 0", "source.gsm8k.tasks"),
    ("tokens_available-zero", "max_epochs = 3", "max_epochs = 3\ntokens_available = 0", "source.gsm8k.tokens_available"),
    ("docs_available-negative", "max_epochs = 3", "max_epochs = 3\ndocs_available = -3", "source.gsm8k.docs_available"),
    ("filters-type", 'filters = ["metadata.score > 0.7"]', 'filters = "metadata.score > 0.7"', "source.fineweb.filters"),
    ("filters-unknown-step", 'filters = ["metadata.score > 0.7"]', 'filters = ["gopher_qualty"]', "source.fineweb.filters[0]"),
    ("hydrate-type", "max_epochs = 3", "max_epochs = 3\nhydrate = 5", "source.gsm8k.hydrate"),
    ("context-on-plain-source", "max_epochs = 3", 'max_epochs = 3\ncontext = { sources = ["fineweb"] }', "source.gsm8k.context"),
    ("toml-syntax", "seq_len = 256", "seq_len = = 256", None),
]



def test_the_base_spec_is_valid(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text(BASE)
    spec = load_spec(p)
    assert [s.name for s in spec.source] == ["gsm8k", "fineweb"] and spec.curate is not None


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("command", ["build", "plan"])
@pytest.mark.parametrize("case, old, new, field", CASES, ids=[c[0] for c in CASES])
def test_a_malformed_spec_is_one_clean_error_and_writes_nothing(cli, tmp_path, monkeypatch, capsys, command, case, old, new, field):
    assert old in BASE, case
    spec = tmp_path / "m.toml"
    spec.write_text(BASE.replace(old, new, 1))
    monkeypatch.chdir(tmp_path)  # the spec's relative output/tokenizer land here, if anything were written
    code, out, err = cli.datakit("mix", command, str(spec))
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    prefix = f"error: {spec}: " + (f"{field}: " if field else "")
    assert lines[0].startswith(prefix), (prefix, lines[0])
    assert "(fix: " in lines[0] and lines[0].endswith(")"), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.toml"]  # no output folder, no tokenizer, nothing
