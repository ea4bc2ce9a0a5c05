"""Small budgets print with enough digits (issue 16: `--budget 0.001` printed "$0.0001 of $0.00")."""

from __future__ import annotations

import re

from datakit.synth.money import usd


def test_usd_keeps_significant_digits_below_a_dollar():
    assert [usd(x) for x in (0, 0.001, 0.000123456, 0.05, 0.5, 1, 1234.567)] == [
        "$0.00", "$0.001", "$0.000123", "$0.05", "$0.50", "$1.00", "$1,234.57"]



def test_a_tenth_of_a_cent_budget_is_printed_as_such(cli, server, fast_spec, fake_key, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AZURE_API_KEY", fake_key)
    monkeypatch.setenv("AZURE_API_BASE", server.url)
    monkeypatch.setenv("AZURE_API_VERSION", "2024-10-21")
    code, out, err = cli.datakit("synth", "planning", "--provider", "azure", "--budget", "0.001", "--dry-run", "--spec", str(fast_spec()))
    assert code == 0, err
    assert "dry run: what $0.001 buys" in out
    # max_tokens 100 at $10/1M out: a call reserves at most ~$0.001 + prompt, so a budget of $0.015 buys a few calls
    code, out, err = cli.datakit("synth", "planning", "--provider", "azure", "--budget", "0.015", "--count", "3",
                              "--out", str(tmp_path / "o"), "--spec", str(fast_spec(max_tokens=100)), "--quiet")
    assert code == 0, err
    spent = re.search(r"spent \$(\S+) this run, \$(\S+) of \$(\S+) in total", out)
    assert spent and spent.group(3) == "0.015", out
    assert float(spent.group(2)) > 0 and spent.group(2) != "0.00", out  # what was spent shows, not "$0.00"
