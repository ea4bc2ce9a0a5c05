"""What a budget buys, before spending: per provider profile, cost per example and examples/tokens bought."""

from __future__ import annotations

from pathlib import Path

from datakit.errors import UserError
from datakit.spec.sizes import human, parse_size
from datakit.synth.combos import combo_for, render_messages
from datakit.synth.llm import prompt_tokens_upper_bound
from datakit.synth.money import usd
from datakit.synth.planning_spec import DEFAULT_SPEC, load_planning_spec
from datakit.synth.prices import import_litellm

N_SAMPLE_PROMPTS = 32


def dry_run(provider: str, budget_usd: float, *, spec_path: str | Path = DEFAULT_SPEC, model: str | None = None, max_tokens: int | None = None, seed: int = 0) -> dict:
    """The dry-run report as a dict (no request is made, no credentials needed).

    The selected provider must have a known price (UserError otherwise); other profiles show `None`.
    """
    spec = load_planning_spec(spec_path)
    selected = spec.price_for(provider, model)  # refuses an unknown price for the provider asked for
    litellm = import_litellm()
    cap = max_tokens
    samples = [render_messages(spec, combo_for(spec, seed, i)) for i in range(N_SAMPLE_PROMPTS)]
    rows = []
    for name, profile in spec.provider.items():
        m = (model if name == provider and model else None) or profile.litellm_model()
        try:
            price = selected if name == provider else spec.price_for(name)
        except UserError:
            price = None
        n_prompt = sum(litellm.token_counter(model=m, messages=s) for s in samples) / len(samples)
        max_tokens = cap or spec.max_tokens_for(name)
        n_out = min(spec.expected_output_tokens_for(name), max_tokens)
        row = {"provider": name, "model": m, "selected": name == provider, "n_prompt_tokens": n_prompt, "n_output_tokens": n_out,
               "max_tokens": max_tokens, "expected_output_tokens": spec.expected_output_tokens_for(name)}
        if price is not None:
            expected = price.cost_usd(n_prompt, n_out)
            worst = price.cost_usd(max(prompt_tokens_upper_bound(s) for s in samples), max_tokens)
            n_examples = int(budget_usd // expected)
            row |= {
                "price_in_usd_per_mtok": price.in_usd_per_mtok,
                "price_out_usd_per_mtok": price.out_usd_per_mtok,
                "expected_cost_usd_per_example": expected,
                "worst_cost_usd_per_example": worst,
                "n_examples": n_examples,
                "n_tokens": int(n_examples * (n_prompt + n_out)),
                "n_output_tokens_total": n_examples * n_out,
            }
        rows.append(row)
    report = {"budget_usd": budget_usd, "max_tokens": cap or spec.max_tokens_for(provider), "n_sample_prompts": len(samples), "rows": rows,
              "temperature": spec.planning.temperature}
    if spec.plan_claim is not None:
        c = spec.plan_claim
        n_tokens = c.budget_usd / c.price_usd_per_1k_tokens * 1000  # dollars / ($ per 1K tokens) x 1K
        claimed = parse_size(c.claimed_tokens)
        report["plan_claim"] = {
            "budget_usd": c.budget_usd,
            "price_usd_per_1k_tokens": c.price_usd_per_1k_tokens,
            "claimed_tokens": claimed,
            "n_tokens": n_tokens,
            "ratio": claimed / n_tokens,
        }
    return report


def format_dry_run(report: dict) -> str:
    lines = [
        f"dry run: what {usd(report['budget_usd'])} buys (no request made)",
        f"prompt tokens: mean of {report['n_sample_prompts']} rendered prompts (litellm's tokenizer); "
        f"output: expected_output_tokens (an estimate; reasoning models' hidden tokens are output); "
        f"worst case reserved per call: max_tokens (the profile's, else [planning]'s)",
        "",
        f"{'provider':<20}{'model':<34}{'$in/1M':>8}{'$out/1M':>9}{'prompt':>8}{'output':>8}{'max out':>8}{'$/ex':>9}{'$/ex max':>10}{'examples':>10}{'tokens':>9}",
    ]
    for r in report["rows"]:
        name = r["provider"] + (" *" if r["selected"] else "")
        head = f"{name:<20}{r['model'][:33]:<34}"
        if "n_examples" not in r:
            lines.append(head + f"{'unknown price: set price_in/out_usd_per_mtok in the profile':>60}")
            continue
        lines.append(
            head
            + f"{r['price_in_usd_per_mtok']:>8.2f}{r['price_out_usd_per_mtok']:>9.2f}{r['n_prompt_tokens']:>8.0f}{r['n_output_tokens']:>8}{r['max_tokens']:>8}"
            + f"{r['expected_cost_usd_per_example']:>9.4f}{r['worst_cost_usd_per_example']:>10.4f}{r['n_examples']:>10,}{human(r['n_tokens']):>9}"
        )
    lines.append("(* = selected provider; tokens = prompt + output tokens of the examples bought; a reasoning model's output "
                 "includes its hidden reasoning, which the records do not keep)")
    for r in report["rows"]:
        if r.get("expected_output_tokens", 0) > r.get("max_tokens", 1 << 62):
            lines.append(f"warning: {r['provider']}: expected_output_tokens {r['expected_output_tokens']:,} > max_tokens {r['max_tokens']:,}: "
                         "most answers would be truncated (rejected, yet paid)")
    c = report.get("plan_claim")
    if c:
        lines += [
            "",
            f"plan's figure: ${c['budget_usd']:g} at ${c['price_usd_per_1k_tokens']:g}/1K tokens buys {human(c['claimed_tokens'])} tokens (plan)",
            f"  correct:     ${c['budget_usd']:g} / ${c['price_usd_per_1k_tokens']:g} x 1,000 = {c['n_tokens']:,.0f} tokens = {human(c['n_tokens'])} "
            f"(the plan's figure is {c['ratio']:,.0f}x too high: it counts billions where the math gives millions)"
            if c["ratio"] > 1.5
            else "(the plan's figure holds)",
        ]
    return "\n".join(lines)
