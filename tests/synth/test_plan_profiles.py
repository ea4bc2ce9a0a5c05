"""The plan's providers and generation settings: Gemini 3 Pro and Kimi K2 Thinking have priced profiles, the
plan's temperature / max_tokens / five-step outline are the defaults, and a reasoning profile's own settings
reach the request (real litellm client, real local server)."""

from __future__ import annotations

import re
import sqlite3

from datakit.synth.planning import run_planning
from datakit.synth.planning_spec import load_planning_spec


def test_the_plans_generation_settings_are_the_defaults(real_spec):
    spec = load_planning_spec(real_spec)
    assert (spec.planning.temperature, spec.planning.max_tokens, spec.planning.min_steps) == (0.7, 2048, 5)
    steps = re.findall(r"(?<![0-9])([1-5])\. [A-Z]", spec.prompt.system)
    assert steps == ["1", "2", "3", "4", "5"]  # the five-step thinking outline, in order
    assert [d.name for d in spec.domain] == ["software architecture", "research planning", "logistics",
                                             "multi-agent coordination", "resource allocation"]
    assert spec.max_tokens_for("azure") == 2048  # the default profile uses the plan's settings as written


def test_the_plans_models_have_sourced_prices(real_spec):
    spec = load_planning_spec(real_spec)
    kimi = spec.price_for("kimi")
    assert spec.profile("kimi").litellm_model() == "moonshot/kimi-k2-thinking"
    assert (kimi.in_usd_per_mtok, kimi.out_usd_per_mtok) == (0.60, 2.50)
    assert kimi.source.startswith("spec: platform.moonshot.ai") and "2025-" in kimi.source
    gemini = spec.price_for("gemini")
    assert spec.profile("gemini").litellm_model() == "gemini/gemini-3-pro-preview"
    assert (gemini.in_usd_per_mtok, gemini.out_usd_per_mtok) == (2.0, 12.0) and "ai.google.dev" in gemini.source
    # where litellm's map has the plan's models, its price is used, and it agrees with the overrides above
    assert spec.price_for("vertex").source == "litellm:vertex_ai/gemini-3-pro-preview"
    assert (spec.price_for("vertex").in_usd_per_mtok, spec.price_for("vertex").out_usd_per_mtok) == (2.0, 12.0)
    azure_kimi = spec.price_for("azure-kimi")
    assert azure_kimi.source == "litellm:azure_ai/kimi-k2-thinking"
    assert (round(azure_kimi.in_usd_per_mtok, 6), round(azure_kimi.out_usd_per_mtok, 6)) == (0.6, 2.5)
    # --model moonshot/kimi-k2-thinking on the kimi profile is no longer refused for lack of a price
    assert spec.price_for("kimi", "moonshot/kimi-k2-thinking").in_usd_per_mtok == 0.60
    # newer models stay available through litellm's map
    assert spec.price_for("kimi", "moonshot/kimi-k2.5").source == "litellm:moonshot/kimi-k2.5"


def test_a_reasoning_profile_sends_its_own_temperature_and_cap(server, real_spec, tmp_path, monkeypatch, fake_key):
    monkeypatch.setenv("MOONSHOT_API_KEY", fake_key)
    monkeypatch.setenv("MOONSHOT_API_BASE", server.openai_url)
    out = tmp_path / "kimi"
    s = run_planning(out, provider="kimi", budget_usd=1.0, count=3, spec_path=real_spec, progress=False)
    assert s["accepted_total"] == 3
    sent = server.seen_params
    assert sent and all(p["temperature"] == 1.0 for p in sent)
    assert all((p["max_tokens"] or p["max_completion_tokens"]) == 16384 for p in sent)
    with sqlite3.connect(out / "ledger.sqlite") as db:
        (reserved,) = db.execute("select max(reserved_usd) from entries").fetchone()
    assert reserved > 16384 * 2.50 / 1e6  # the worst case reserved is the profile's cap at the cited price
