"""A full disk during paid generation (issue 16): the run stops with one clear error, no record is cut in
half, and after freeing space the rerun finishes with every paid answer on disk (none lost, none twice)
and the budget held. The output folder sits on a small real disk (tmpfs); the provider is the real HTTP
test server behind litellm."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from datakit.synth.store import RESERVE_BYTES, OutputFolder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from disk_helpers import small_disk  # noqa: E402



def lines(folder: Path) -> list[dict]:
    """Every line of every run file; json.loads fails on a line cut in half."""
    return [json.loads(line) for p in sorted(folder.glob("*.jsonl")) for line in p.read_text().splitlines()]


def test_disk_full_mid_run_loses_no_paid_answer(cli, server, fast_spec, fake_key, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AZURE_API_KEY", fake_key)
    monkeypatch.setenv("AZURE_API_BASE", server.url)
    monkeypatch.setenv("AZURE_API_VERSION", "2024-10-21")
    with small_disk(tmp_path / "disk", f"{(RESERVE_BYTES >> 10) + 800}k") as grow:
        if grow is None:
            pytest.skip("needs a mountable tmpfs (root or CAP_SYS_ADMIN) for a disk that really fills")
        out = tmp_path / "disk" / "out"
        args = ["planning", "--provider", "azure", "--budget", "5", "--count", "100", "--concurrency", "4",
                "--out", str(out), "--spec", str(fast_spec()), "--quiet"]
        code, stdout, err = cli.datakit("synth", *args)
        assert code == 2, stdout + err
        assert err.strip().splitlines() == [f"error: {out}: the disk is full: the run stopped; every answer paid for so far is written "
                                           "(fix: free space and rerun the same command: it resumes where it stopped)"]
        first = lines(out / "records")
        assert 0 < len(first) < 100 and not (out / ".disk-reserve").exists()  # the reserve was given back and used

        grow("64m")
        code, stdout, err = cli.datakit("synth", *args)
        assert code == 0, err
        assert "count reached" in stdout
        records, rejects = lines(out / "records"), lines(out / "rejects")
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids)) == 100
        assert {r["id"] for r in first} <= set(ids)  # what the full disk run wrote is kept
        con = sqlite3.connect(out / "ledger.sqlite")
        paid = {label for label, note in con.execute("select label, note from entries where state = 'settled' and cost_usd > 0")
                if not note.startswith(("cancelled in flight", "timeout"))}  # answers that came back
        spent, = con.execute("select spent_usd from totals").fetchone()
        con.close()
        assert paid and paid <= set(ids) | {r["id"] for r in rejects}  # no paid answer lost
        assert spent <= 5.0
        assert OutputFolder(out).records_dir.exists()
