"""A built mixture is only used when its files match the manifest (issue 16): `datakit verify`,
`datakit tokens report` and a rebuild over a damaged finished build, on copies of one small real build."""

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest

from datakit.contract import load_manifest, sha256_file, verify_mixture

from smoke_helpers import run_cli


def copy_build(small: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(folder to run in, output folder) of a copy of the small build, .work included."""
    d = tmp_path / "copy"
    shutil.copytree(small, d, symlinks=True)
    (d / "mix" / ".work" / "spec.json").write_text('{"name": "small", "spec_path": "small.toml"}')
    return d, d / "mix"


def shard_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted((folder / "tokens").rglob("*")) if p.is_file()}


def end_index_at_shard_end(index: Path, doc: int = 5) -> None:
    """The issue's corruption: one document's end set to the shard's end (the loader then reads tokens twice)."""
    ends = np.fromfile(index, dtype="<u8")
    ends[doc] = ends[-1]
    ends.tofile(index)


def flip_byte(path: Path, at: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_passes_on_a_good_build(small):
    out = small / "mix"
    m = load_manifest(out)
    report = verify_mixture(out)
    assert report.ok, report.summary()
    n_shards = sum(len(s.shards) for s in m.sources)
    assert report.n_files == 2 * n_shards + 2  # .ds + .ds.index per shard, accounting.duckdb, the tokenizer
    r = run_cli("verify", out)
    assert r.returncode == 0 and r.stdout.startswith("ok: "), r.stderr
    q = run_cli("verify", out, "--quick")
    assert q.returncode == 0 and "(sizes;" in q.stdout


def test_verify_lists_every_damaged_file_and_exits_1(small, tmp_path):
    cwd, out = copy_build(small, tmp_path)
    index = out / "tokens" / "gsm8k" / "gsm8k-00000.ds.index"
    end_index_at_shard_end(index)
    shard = out / "tokens" / "arc" / "arc-00001.ds"
    flip_byte(shard)  # same size: only the sha256 sees it
    cut = out / "tokens" / "gsm8k" / "gsm8k-00001.ds"
    cut.write_bytes(cut.read_bytes()[:-2])  # one token short: the size sees it
    con = duckdb.connect(str(out / "accounting.duckdb"))
    con.execute("delete from docs where source = 'arc' and position = 0")
    con.close()

    r = run_cli("verify", out)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"error: {out}: 4 of ") and "do not match the manifest" in lines[0]
    assert "fix: `datakit mix build small.toml` rebuilds them" in lines[0]
    details = "\n".join(lines[1:])
    assert "tokens/gsm8k/gsm8k-00000.ds.index: sha256 differs" in details
    assert "tokens/gsm8k/gsm8k-00000.ds.index: document ends are not strictly increasing" in details
    assert "tokens/arc/arc-00001.ds: sha256 differs" in details
    assert "tokens/gsm8k/gsm8k-00001.ds: " in details and "bytes, the manifest implies" in details
    assert "accounting.duckdb: table docs, tokens/arc/arc-00000.ds" in details

    quick = verify_mixture(out, quick=True)  # sizes only: the truncated shard, not the same-size damage
    assert quick.bad_files == ["tokens/gsm8k/gsm8k-00001.ds"]

    report = run_cli("tokens", "report", out)  # reported on damaged builds with exit 0 before
    assert report.returncode == 1 and "do not match the manifest" in report.stderr
    assert (out / "report.md").read_text() == (small / "mix" / "report.md").read_text()  # not rewritten


def test_rebuild_over_a_damaged_build_restores_the_bytes(small, tmp_path):
    cwd, out = copy_build(small, tmp_path)
    before = shard_hashes(out)
    end_index_at_shard_end(out / "tokens" / "gsm8k" / "gsm8k-00000.ds.index")
    flip_byte(out / "tokens" / "arc" / "arc-00000.ds")
    (out / "tokens" / "arc" / "arc-00001.ds").unlink()
    r = run_cli("mix", "build", "small.toml", cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert "does not match its manifest: rebuilding" in r.stderr and "tokens/arc/arc-00001.ds: missing" in r.stderr
    assert "rebuilt: every shard again has the sha256 the manifest recorded" in r.stderr
    assert shard_hashes(out) == before
    assert verify_mixture(out).ok
    created = load_manifest(out).created
    again = run_cli("mix", "build", "small.toml", cwd=cwd)  # now intact: verified and kept
    assert again.returncode == 0 and "rebuilding" not in again.stderr
    assert load_manifest(out).created == created


def test_rebuild_refuses_when_the_cached_stages_are_damaged_too(small, tmp_path):
    cwd, out = copy_build(small, tmp_path)
    flip_byte(out / "tokens" / "arc" / "arc-00000.ds")
    cached = sorted((out / ".work" / "tokenized" / "arc").glob("*.ds"))[0]
    flip_byte(cached, at=100)  # a token of the cached tokenized documents: the rebuild would write other bytes
    r = run_cli("mix", "build", "small.toml", cwd=cwd)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "the rebuilt shards differ from the ones the damaged build recorded" in r.stderr
    assert "fix: delete mix/.work" in r.stderr
    assert not (out / "manifest.json").exists()  # never reported as built
