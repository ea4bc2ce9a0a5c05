"""Contract 1: the spec validates, and every error names file, field and fix."""

import pytest

from datakit.errors import UserError
from datakit.spec import load_spec, parse_size

BASE = """
[mixture]
name = "t"
tokenizer = "tok/tokenizer.json"
output = "out"
{mixture_extra}

[[source]]
name = "gsm8k"
uri = "file://data/*.parquet"
format = "gsm8k"
{source_extra}
"""


def write(tmp_path, mixture_extra="", source_extra='tokens = "10M"'):
    p = tmp_path / "spec.toml"
    p.write_text(BASE.format(mixture_extra=mixture_extra, source_extra=source_extra))
    return p


def error_of(path) -> str:
    with pytest.raises(UserError) as e:
        load_spec(path)
    return str(e.value)


@pytest.mark.parametrize("text,value", [("50B", 50 * 10**9), ("500M", 500 * 10**6), ("12_000", 12000), ("1.5K", 1500), (7, 7), ("2GB", 2 * 10**9)])
def test_sizes_parse(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["fifty", "-3", "5X", ""])
def test_bad_sizes_refused(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_valid_spec_loads(tmp_path):
    spec = load_spec(write(tmp_path))
    assert spec.source[0].tokens == 10_000_000
    assert spec.source[0].max_epochs == 4
    assert spec.mixture.seq_len == 2048 and spec.mixture.vocab_size == 65536
    assert len(spec.sha256) == 64


def test_same_spec_same_hash_and_change_changes_it(tmp_path):
    a = load_spec(write(tmp_path)).sha256
    assert load_spec(write(tmp_path)).sha256 == a
    assert load_spec(write(tmp_path, source_extra='tokens = "11M"')).sha256 != a


def test_unknown_key_names_source_and_field(tmp_path):
    msg = error_of(write(tmp_path, source_extra='tokens = "1M"\nweigth = 2'))
    assert "spec.toml" in msg and "source.gsm8k.weigth" in msg and "unknown key" in msg and "fix:" in msg


def test_unknown_mixture_key(tmp_path):
    msg = error_of(write(tmp_path, mixture_extra="sequence_length = 4"))
    assert "mixture.sequence_length" in msg


def test_tokens_and_weight_are_exclusive(tmp_path):
    msg = error_of(write(tmp_path, source_extra='tokens = "1M"\nweight = 0.5'))
    assert "source.gsm8k" in msg and "exactly one of `tokens`" in msg


def test_weight_needs_total(tmp_path):
    msg = error_of(write(tmp_path, source_extra="weight = 0.5"))
    assert "total_tokens" in msg


def test_bad_size_names_field(tmp_path):
    msg = error_of(write(tmp_path, source_extra='tokens = "ten billion"'))
    assert "source.gsm8k.tokens" in msg and "50B" in msg


def test_bad_uri_scheme(tmp_path):
    p = write(tmp_path)
    p.write_text(p.read_text().replace("file://data", "ftp://data"))
    assert "source.gsm8k.uri" in error_of(p)


def test_malformed_toml_shows_line(tmp_path):
    p = tmp_path / "spec.toml"
    p.write_text('[mixture]\nname = "t"\nseq_len = = 3\n')
    msg = error_of(p)
    assert "malformed TOML" in msg and "line 3" in msg


def test_missing_file(tmp_path):
    assert "not found" in error_of(tmp_path / "nope.toml")


def test_duplicate_source_names(tmp_path):
    p = write(tmp_path)
    p.write_text(p.read_text() + '\n[[source]]\nname = "gsm8k"\nuri = "file://x/*.jsonl"\ntokens = "1M"\n')
    assert "unique" in error_of(p)


def test_all_is_a_target(tmp_path):
    assert load_spec(write(tmp_path, source_extra='tokens = "all"')).source[0].tokens == "all"


def test_cli_prints_error_and_exits_2(tmp_path):
    import subprocess
    import sys

    p = write(tmp_path, source_extra='tokens = "1M"\nweigth = 2')
    r = subprocess.run([sys.executable, "-m", "datakit.cli.main", "mix", "plan", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "source.gsm8k.weigth" in r.stderr
    assert "Traceback" not in r.stderr
