"""Synthetic data under a hard dollar budget (imports nothing heavy; import the modules you need).

    ledger.py        Ledger(folder, budget_usd): reserve / settle / release, safe across threads and processes
    llm.py           LLMCaller: one litellm call = reserve worst case -> call -> settle; retries, breaker
    prices.py        resolve_price(model, ...): litellm's price map or the spec's; unknown price refuses
    planning_spec.py synth/planning.toml -> PlanningSpec; credentials from the environment
    combos.py        deterministic domain x task x constraint x scale x persona per (seed, index)
    validate.py      <problem>/<thinking>/<answer> checks, reject reasons
    dedup.py         MinHash near-duplicate problems
    store.py         the output folder: records/, rejects/, lock, crash-safe JSONL appends
    planning.py      run_planning(...): the generator; run_procedural(...) delegates to procedural/
    dryrun.py        what a budget buys per provider, and the plan's own figure
    status.py        spend, records, rejects, tokens, $/1M tokens of a folder
    testing/server.py  a real OpenAI/Azure-compatible server with fault injection (tests, benchmarks)
"""
