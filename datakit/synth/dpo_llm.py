"""LLM-made flaws for `datakit synth dpo --provider <llm>`: one flawed rewrite per planning record, under budget.

The flaw is requested with the prompt in synth/dpo.toml (the plan's "make a calculation error in step 3",
extended to the whole catalog). Calls go through the same budget ledger (`<out>/ledger.sqlite`) and
litellm wrapper as `datakit synth planning` (datakit.synth.ledger, datakit.synth.llm): each call reserves
its worst case first, so the folder never spends more than --budget, across reruns.

A pair is kept only if the rewrite has one `<thinking>` and one `<answer>`, was not cut off
(`finish_reason == "length"`), differs from chosen beyond whitespace and, where the record carries a
procedural instance, fails the domain checker (`meta.verified` is then true). Everything else goes to
`rejects/` with its reason; a rerun skips ids already in records/ or rejects/.
"""

from __future__ import annotations

import random
import re
import time
import tomllib
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from pydantic import Field, ValidationError
from tqdm import tqdm

from datakit.errors import UserError
from datakit.strict import Strict
from datakit.synth.dpo import parse_flaws
from datakit.synth.dpo_sets import iter_set, validate_planning_set
from datakit.synth.flaws import CATALOG, domain_flaws
from datakit.synth.money import usd
from datakit.synth.procedural import DOMAINS
from datakit.synth.procedural.common import render_completion, split_completion
from datakit.synth.procedural.records import check_completion

DEFAULT_SPEC = Path("synth/dpo.toml")
_STEP_LINE = re.compile(r"(?m)^\s*(?:Step\s+)?(\d+)[.:)]")


class DpoSettings(Strict):
    max_tokens: int = Field(4096, gt=0)
    concurrency: int = Field(8, ge=1)
    temperature: float | None = 0.7
    timeout_s: float = Field(180.0, gt=0)
    max_attempts: int = Field(6, ge=1)
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    flaws: list[str] = Field(default_factory=lambda: list(CATALOG))


class DpoPrompt(Strict):
    system: str
    user: str


class DpoSpec(Strict):
    dpo: DpoSettings = Field(default_factory=DpoSettings)
    flaw_descriptions: dict[str, str] = Field(default_factory=dict)
    prompt: DpoPrompt
    path: str = ""


def load_dpo_spec(path: str | Path = DEFAULT_SPEC) -> DpoSpec:
    """Read and validate synth/dpo.toml; every error names the file, the field and the fix."""
    path = Path(path)
    if not path.exists():
        raise UserError("spec file not found", file=str(path), field="spec",
                        fix="run from the repository root or pass --spec synth/dpo.toml")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"not valid TOML: {e}", file=str(path), fix="fix the TOML syntax") from None
    try:
        spec = DpoSpec(**data, path=str(path))
    except ValidationError as e:
        err = e.errors()[0]
        raise UserError(err["msg"], file=str(path), field=".".join(map(str, err["loc"])),
                        fix="see the comments in synth/dpo.toml") from None
    bad = [f for f in [*spec.dpo.flaws, *spec.flaw_descriptions] if f not in CATALOG]
    if bad:
        raise UserError(f"unknown flaw {bad[0]!r}", file=str(path), field="dpo.flaws", fix=f"use some of: {', '.join(CATALOG)}")
    for key in ("{problem}", "{thinking}", "{answer}", "{flaw_description}"):
        if key not in spec.prompt.user:
            raise UserError(f"the prompt lacks {key}", file=str(path), field="prompt.user", fix=f"put {key} in the template")
    return spec


def count_steps(thinking: str) -> int:
    """Numbered steps in a thinking trace ('Step 3:' or '3.' at a line start); at least 1."""
    return max(1, len(_STEP_LINE.findall(thinking)))


def flaw_request(spec: DpoSpec, rec: dict, flaws: list[str], seed: int) -> tuple[str, int, list[dict]]:
    """(flaw, step, chat messages) for one planning record; deterministic from the record id and seed."""
    rng = random.Random(f"{seed}:{rec['id']}:llm")
    flaw = rng.choice(flaws)
    n_steps = count_steps(rec["thinking"])
    step = rng.randint(1, n_steps)
    desc = spec.flaw_descriptions.get(flaw, CATALOG[flaw])
    user = spec.prompt.user.format(problem=rec["problem"], thinking=rec["thinking"], answer=rec["answer"], flaw=flaw,
                                   flaw_description=desc, step=step, n_steps=n_steps)
    return flaw, step, [{"role": "system", "content": spec.prompt.system}, {"role": "user", "content": user}]


def judge_rewrite(rec: dict, text: str, finish_reason: str | None) -> tuple[str, str, str, list[str], bool]:
    """(status, thinking, answer, checker errors, checked) of an LLM rewrite; status "kept" or a reject reason."""
    if finish_reason == "length":
        return "truncated", "", "", [], False
    thinking, answer = split_completion(text)
    if not thinking.strip() or not answer.strip() or text.count("<thinking>") != 1 or text.count("<answer>") != 1:
        return "malformed", thinking, answer, [], False
    chosen = render_completion(rec["thinking"], rec["answer"])
    if " ".join(render_completion(thinking.strip(), answer.strip()).split()) == " ".join(chosen.split()):
        return "same_as_chosen", thinking, answer, [], False
    inst = (rec.get("meta") or {}).get("instance")
    if inst is not None and rec["domain"] in DOMAINS:
        errors = check_completion(rec["domain"], inst, thinking.strip(), answer.strip())
        if not errors:
            return "rejected_passes_checker", thinking, answer, [], True
        return "kept", thinking, answer, errors, True
    return "kept", thinking, answer, [], False


def make_dpo_llm(from_dir: str | Path, out_dir: str | Path, *, provider: str, budget_usd: float | None,
                 model: str | None = None, flaws: list[str] | None = None, seed: int = 0, limit: int | None = None,
                 spec_path: str | Path = DEFAULT_SPEC, planning_spec_path: str | Path = Path("synth/planning.toml"),
                 concurrency: int | None = None, progress: bool = True) -> dict:
    """Ask `provider` for one flawed rewrite per planning record of `from_dir`; write proven pairs to `out_dir`.

    provider/model: a profile of synth/planning.toml (and an optional litellm model override).
    budget_usd: the most `out_dir` may ever spend (its ledger persists across reruns), in US dollars.
    flaws: restrict the catalog. seed: fixes each record's flaw and target step. limit: first N records.
    Order of checks (nothing is written before they pass): flaws, specs, price, credentials, budget, input set.
    """
    from datakit.synth.ledger import BudgetExhausted, Ledger
    from datakit.synth.llm import CallFailed, CircuitBreaker, LLMCaller
    from datakit.synth.planning_spec import credentials_for, load_planning_spec
    from datakit.synth.store import OutputFolder

    wanted = parse_flaws(flaws)
    spec = load_dpo_spec(spec_path)
    pspec = load_planning_spec(planning_spec_path)
    pspec.profile(provider)
    model = model or pspec.profile(provider).litellm_model()
    price = pspec.price_for(provider, model)  # unknown price: refuse before anything else
    creds = credentials_for(pspec, provider, model)  # missing key: refuse before any request
    if budget_usd is None or budget_usd <= 0:
        raise UserError("a budget in US dollars is required for LLM-made flaws", field="--budget", fix="pass --budget 20 (dollars)")
    info = validate_planning_set(from_dir, need_instance=False)
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(from_dir).resolve():
        raise UserError("--out is the same folder as --from", file=str(out_dir), field="out", fix="write pairs to a new folder")
    settings = spec.dpo
    catalog = [f for f in settings.flaws if wanted is None or f in wanted]
    if not catalog:
        raise UserError("no flaw left to request", field="flaw", fix=f"pick flaws listed in {spec.path} dpo.flaws")

    folder = OutputFolder(out_dir)
    folder.lock()
    try:
        ledger = Ledger(folder.out, budget_usd)
        done = {r.get("id") for r in folder.records()} | {r.get("id") for r in folder.rejects()}
        run_id, records, rejects = folder.open_run()
        extra = dict(pspec.profile(provider).extra)  # a reasoning model's own temperature wins, as in synth planning
        if settings.temperature is not None:
            extra.setdefault("temperature", settings.temperature)
        caller = LLMCaller(model, price, ledger, api_key=creds.api_key, api_base=creds.api_base,
                           api_version=creds.api_version, timeout_s=settings.timeout_s, max_attempts=settings.max_attempts,
                           backoff_base_s=settings.backoff_base_s, backoff_max_s=settings.backoff_max_s,
                           breaker=CircuitBreaker(), extra=extra, seed=seed,
                           quota=pspec.profile(provider).quota(folder.out, model))
        spent_before = ledger.totals().spent_usd
        kept, rejected, failed = Counter(), Counter(), Counter()
        verified = [0]
        skipped, stopped, t0 = 0, "all records done", time.time()

        def todo():
            nonlocal skipped
            for n, (_, _, rec) in enumerate(iter_set(from_dir)):
                if limit is not None and n >= limit:
                    return
                inst = (rec.get("meta") or {}).get("instance")
                options = [f for f in catalog if inst is None or rec["domain"] not in DOMAINS or f in domain_flaws(rec["domain"])]
                if not options:
                    continue
                flaw, step, messages = flaw_request(spec, rec, options, seed)
                pid = f"{rec['id']}:{flaw}:llm"
                if pid in done:
                    skipped += 1
                    continue
                yield rec, flaw, step, messages, pid

        def handle(rec, flaw, step, pid, result):
            status, thinking, answer, errors, checked = judge_rewrite(rec, result.text, result.finish_reason)
            meta = {"flaw": flaw, "step": step, "verified": checked and status == "kept", "checked": checked,
                    "domain": rec["domain"], "task": rec.get("task"), "source_id": rec["id"], "provider": provider,
                    "model": model, "cost_usd": round(result.cost_usd, 8), "n_prompt_tokens": result.n_prompt_tokens,
                    "n_completion_tokens": result.n_completion_tokens, "finish_reason": result.finish_reason,
                    "price_in_usd_per_mtok": price.in_usd_per_mtok, "price_out_usd_per_mtok": price.out_usd_per_mtok,
                    "rejected_errors": errors[:3], "run_id": run_id}
            inst = (rec.get("meta") or {}).get("instance")
            if inst is not None:
                meta["instance"] = inst
            pair = {"id": pid, "prompt": f"<problem>{rec['problem']}</problem>",
                    "chosen": render_completion(rec["thinking"], rec["answer"]),
                    "rejected": render_completion(thinking.strip(), answer.strip()), "meta": meta}
            if status == "kept":
                records.append(pair)
                kept[(rec["domain"], flaw)] += 1
                verified[0] += meta["verified"]
            else:
                rejects.append({**pair, "reason": status, "output": result.text})
                rejected[status] += 1
            done.add(pid)

        concurrency = concurrency or settings.concurrency
        bar = tqdm(total=min(info["records"], limit or info["records"]), desc="dpo (llm)", unit="rec", disable=not progress)
        jobs = todo()
        try:
            with ThreadPoolExecutor(concurrency) as pool:
                in_flight = {}
                exhausted = False
                while True:
                    while not exhausted and len(in_flight) < concurrency:
                        job = next(jobs, None)
                        if job is None:
                            exhausted = True
                            break
                        rec, flaw, step, messages, pid = job
                        fut = pool.submit(caller.call, messages, max_tokens=max(settings.max_tokens, pspec.profile(provider).max_tokens or 0), label=pid)
                        in_flight[fut] = (rec, flaw, step, pid)
                    if not in_flight:
                        break
                    finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        rec, flaw, step, pid = in_flight.pop(fut)
                        bar.update(1)
                        try:
                            result = fut.result()  # ProviderRefused / CircuitOpen (UserErrors) stop the run
                        except BudgetExhausted:
                            stopped, exhausted = "budget reached", True
                            continue
                        except CallFailed as e:
                            failed[e.reason.split(":")[0]] += 1
                            continue
                        handle(rec, flaw, step, pid, result)
        finally:
            bar.close()
            records.close()
            rejects.close()
        totals = ledger.totals()
        return {"out": str(folder.out), "run_id": run_id, "provider": provider, "model": model,
                "pairs_written": sum(kept.values()), "verified_pairs": verified[0], "rejected": dict(rejected),
                "failed": dict(failed), "records_skipped_existing": skipped, "stopped": stopped,
                "kept_by_domain_flaw": {f"{d}/{f}": c for (d, f), c in sorted(kept.items())},
                "spent_usd": totals.spent_usd - spent_before, "spent_total_usd": totals.spent_usd,
                "budget_usd": budget_usd, "elapsed_s": round(time.time() - t0, 3)}
    finally:
        folder.unlock()


def format_llm_summary(s: dict) -> str:
    rej = ", ".join(f"{k} {v}" for k, v in sorted(s["rejected"].items())) or "none"
    fail = ", ".join(f"{k} {v}" for k, v in sorted(s["failed"].items())) or "none"
    return (f"{s['stopped']}: wrote {s['pairs_written']} pairs to {s['out']}/records/{s['run_id']}.jsonl "
            f"({s['model']}; {s['verified_pairs']} proven by a checker); skipped {s['records_skipped_existing']} already done\n"
            f"  spent {usd(s['spent_usd'])} this run, {usd(s['spent_total_usd'])} of {usd(s['budget_usd'])} in total\n"
            f"  dropped: {rej}; failed calls (retried on rerun): {fail}\n"
            f"  check: datakit synth verify {s['out']}")
