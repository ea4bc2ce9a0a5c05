"""`datakit mix plan` and the build around it (issue 16): a plan never writes into another spec's build,
a source its filters empty is named with the numbers (with [curate] too), and a chars/4 estimate says so."""

from __future__ import annotations

import hashlib
from pathlib import Path

from smoke_helpers import run_cli

SPEC = """
[mixture]
name = "{name}"
seq_len = 256
tokenizer = "{tokenizer}"
vocab_size = 4096
output = "mix"
seed = {seed}
{curate}
[[source]]
name = "gsm8k"
uri = "samples://openai__gsm8k/main/train-*.parquet"
format = "gsm8k"
tokens = "all"

[[source]]
name = "fineweb"
uri = "samples://HuggingFaceTB__smollm-corpus/fineweb-edu-dedup/train-*.parquet"
format = "fineweb-edu"
tokens = "all"
filters = ["{filter}"]
"""


def write_spec(folder: Path, file: str = "a.toml", *, name: str = "a", seed: int = 1, tokenizer: Path | str = "", curate: str = "",
               filter: str = "metadata.score > 0.7") -> Path:
    p = folder / file
    p.write_text(SPEC.format(name=name, seed=seed, tokenizer=tokenizer, curate=curate, filter=filter))
    return p


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder` with its bytes' hash and mtime: any write shows."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir") + f":{p.stat().st_mtime_ns}"
            for p in sorted(folder.rglob("*"))}


def test_plan_never_writes_into_another_specs_build(tmp_path, smoke_tokenizer):
    write_spec(tmp_path, tokenizer=smoke_tokenizer)
    assert run_cli("mix", "build", "a.toml", cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path / "mix")
    write_spec(tmp_path, "b.toml", seed=2, tokenizer=smoke_tokenizer)  # same name and output, another spec
    write_spec(tmp_path, "c.toml", name="c", tokenizer=smoke_tokenizer)  # another mixture altogether
    for other in ("b.toml", "c.toml"):
        r = run_cli("mix", "plan", other, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "gsm8k" in r.stdout and "fineweb" in r.stdout and "counted" in r.stdout  # still a real, counted plan
        assert "note: mix holds the finished build of another spec (mixture 'a')" in r.stderr
        assert snapshot(tmp_path / "mix") == before  # not a byte, not a timestamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.toml", "b.toml", "c.toml", "mix"]  # scratch folder removed
    again = run_cli("mix", "build", "a.toml", cwd=tmp_path)
    assert again.returncode == 0 and "rebuilding" not in again.stderr


def test_a_source_emptied_by_its_filters_is_named_with_the_numbers_also_with_curate(tmp_path, smoke_tokenizer):
    for curate in ("", "[curate]\ndedup = { exact = true }\n"):
        d = tmp_path / ("curate" if curate else "plain")
        d.mkdir()
        write_spec(d, tokenizer=smoke_tokenizer, curate=curate, filter="metadata.score > 100")
        r = run_cli("mix", "build", "a.toml", cwd=d)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        line = r.stderr.strip().splitlines()[-1]
        assert line.startswith("error: a.toml: source.fineweb.filters: no documents left after filters in source fineweb (kept 0 of "), line
        assert "'metadata.score > 100'" in line and "does not exist" not in line
        assert ("or [curate]" in line) == bool(curate)
        plan = run_cli("mix", "plan", "a.toml", cwd=d)  # the plan shows it as refused, in its table
        assert plan.returncode == 2 and "fineweb: no documents left after filters" in plan.stdout, plan.stdout + plan.stderr


def test_plan_without_a_tokenizer_says_its_numbers_are_estimates(tmp_path):
    write_spec(tmp_path, tokenizer="tok/tokenizer.json")
    r = run_cli("mix", "plan", "a.toml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    note = next(line for line in r.stdout.splitlines() if "note: no tokenizer at tok/tokenizer.json" in line)
    assert "is an estimate (characters / 4)" in note and "gsm8k, fineweb" in note
    assert "`datakit tokenizer train a.toml --vocab-size 4096`" in note and "rerun `datakit mix plan`" in note
