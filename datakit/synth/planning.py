"""Generate planning examples (Contract 3) from an LLM provider under a hard dollar budget.

    summary = run_planning("data/synth/planning", provider="azure", budget_usd=100, count=5000)

Order of checks: spec, price (unknown = refuse), credentials (missing = refuse), folder lock, then
requests. Example `i` of seed `s` has the id `planning-s<s>-<i>`; ids already in records/ or rejects/
are skipped, so an interrupted run (Ctrl-C, kill -9) reruns without duplicates, and the ledger in the
folder carries the spend over. The run stops at `count` accepted records in the folder or when the next
call's worst case no longer fits the budget, whichever comes first.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from pathlib import Path

from tqdm import tqdm

from datakit.errors import UserError
from datakit.synth.batch import BatchRunner, batch_price, check_batch_supported
from datakit.synth.combos import Combo, combo_for, record_id, render_messages
from datakit.synth.dedup import NearDupIndex
from datakit.synth.ledger import BudgetExhausted, Ledger
from datakit.synth.llm import CallFailed, CallResult, CircuitBreaker, LLMCaller
from datakit.synth.money import usd
from datakit.synth.planning_spec import DEFAULT_SPEC, credentials_for, load_planning_spec
from datakit.synth.store import DiskFull, OutputFolder
from datakit.synth.validate import Rejected, parse_planning_output

DEFAULT_OUT = Path("data/synth/planning")
QUALITY_WINDOW = 50  # answers judged by the quality stop
QUALITY_STOP_SHARE = 0.9  # share of them rejected that stops the run


def run_procedural(out: str | Path, *, count: int, seed: int = 0, domains: list[str] | None = None, difficulty: str = "medium") -> dict:
    """`--provider procedural`: verifiable planning tasks made by code (datakit.synth.procedural), no budget."""
    from datakit.synth import procedural

    return procedural.generate(Path(out), count, seed=seed, domains=domains, difficulty=difficulty)


def run_planning(
    out: str | Path = DEFAULT_OUT,
    *,
    provider: str,
    budget_usd: float | None,
    count: int,
    seed: int = 0,
    spec_path: str | Path = DEFAULT_SPEC,
    model: str | None = None,
    concurrency: int | None = None,
    max_tokens: int | None = None,
    timeout_s: float | None = None,
    batch: bool = False,
    progress: bool = True,
    workers: int = 1,
) -> dict:
    """Generate until `count` accepted records are in `out` or the budget is spent; returns a summary.

    provider: a [provider.<name>] profile of the spec. model: litellm model string overriding the profile's.
    budget_usd: the most the folder may ever spend (settled + in flight), in US dollars.
    count: accepted records wanted in the folder (records of earlier runs count).
    seed: selects the sequence of diversity combinations; index i of seed s is always the same example.
    workers: processes making the calls (datakit.synth.workers); > 1 when litellm's CPU per request
        caps the rate of one process. Budget and quota are shared; records are written by this process.
    """
    spec = load_planning_spec(spec_path)
    profile = spec.profile(provider)
    model = model or profile.litellm_model()
    if batch:
        check_batch_supported(provider, model, profile.batch)
    price = spec.price_for(provider, model)  # unknown price: refuse before anything else
    if batch:
        price = batch_price(price)
    creds = credentials_for(spec, provider, model)  # missing key: refuse before any request
    if budget_usd is None or budget_usd <= 0:
        raise UserError("a budget in US dollars is required for paid providers", field="--budget", fix="pass --budget 20 (dollars)")
    if count <= 0:
        raise UserError("count must be > 0", field="--count", fix="pass --count 1000")
    if workers < 1:
        raise UserError("workers must be >= 1", field="--workers", fix="pass --workers 1 (one process) or more")
    settings = spec.planning
    max_tokens = max_tokens or spec.max_tokens_for(provider)
    concurrency = concurrency or settings.concurrency

    folder = OutputFolder(out)
    folder.lock()
    try:
        ledger = Ledger(folder.out, budget_usd)
        done_ids = {r["id"] for r in folder.records()} | {r["id"] for r in folder.rejects()}
        dedup = NearDupIndex(settings.near_dup_threshold)
        n_accepted_before = 0
        for r in folder.records():
            n_accepted_before += str(r["id"]).startswith("planning-")  # records of other generators don't count
            dedup.add(r["id"], r.get("problem", ""))
        run_id, records, rejects = folder.open_run()
        extra = dict(profile.extra)
        if settings.temperature is not None:
            extra.setdefault("temperature", settings.temperature)
        caller = LLMCaller(
            model,
            price,
            ledger,
            api_key=creds.api_key,
            api_base=creds.api_base,
            api_version=creds.api_version,
            timeout_s=timeout_s or settings.timeout_s,
            max_attempts=settings.max_attempts,
            backoff_base_s=settings.backoff_base_s,
            backoff_max_s=settings.backoff_max_s,
            breaker=CircuitBreaker(),
            extra=extra,
            seed=seed,
            quota=profile.quota(folder.out, model),
        )
        spent_before = ledger.totals().spent_usd
        run = _Run(spec, caller, dedup, records, rejects, done_ids, provider, run_id, seed, max_tokens)
        t0 = time.time()
        try:
            if batch:
                runner = BatchRunner(run, caller, folder.out / "batches", settings.batch_size, settings.batch_poll_s)
                stopped = asyncio.run(_batch_loop(runner, count, n_accepted_before, progress))
            else:
                stopped = asyncio.run(_online_loop(run, count, n_accepted_before, concurrency, budget_usd, progress, workers))
        finally:
            records.close()
            rejects.close()
        totals = ledger.totals()
        return {
            "out": str(folder.out),
            "run_id": run_id,
            "provider": provider,
            "model": model,
            "price_in_usd_per_mtok": price.in_usd_per_mtok,
            "price_out_usd_per_mtok": price.out_usd_per_mtok,
            "accepted": run.n_accepted,
            "accepted_total": n_accepted_before + run.n_accepted,
            "rejected": dict(run.rejected),
            "failed": dict(run.failed),
            "spent_usd": totals.spent_usd - spent_before,
            "spent_total_usd": totals.spent_usd,
            "budget_usd": budget_usd,
            "stopped": stopped,
            "elapsed_s": time.time() - t0,
        }
    finally:
        folder.unlock()


async def _online_loop(run: "_Run", count: int, n_before: int, concurrency: int, budget_usd: float, progress: bool, workers: int) -> str:
    if workers <= 1:
        return await run.loop(count, n_before, concurrency, budget_usd, progress)
    from datakit.synth.workers import CallerPool

    pool = CallerPool(run.caller, workers)
    run.caller = pool
    try:
        await pool.start()
        return await run.loop(count, n_before, concurrency, budget_usd, progress)
    finally:
        await pool.close()


async def _batch_loop(runner: BatchRunner, count: int, n_before: int, progress: bool) -> str:
    with tqdm(total=count, initial=min(n_before, count), unit="rec", desc="planning (batch)", disable=not progress) as bar:
        return await runner.loop(count, n_before, bar)


class _Run:
    """The state of one run's async loop; results are handled in the loop, one at a time (no races)."""

    def __init__(self, spec, caller: LLMCaller, dedup: NearDupIndex, records, rejects, done_ids, provider, run_id, seed, max_tokens):
        self.spec, self.caller, self.dedup = spec, caller, dedup
        self.records, self.rejects, self.done_ids = records, rejects, done_ids
        self.provider, self.run_id, self.seed, self.max_tokens = provider, run_id, seed, max_tokens
        self.n_accepted = 0
        self.rejected: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._next_index = 0
        self._recent: deque[str] = deque(maxlen=QUALITY_WINDOW)  # reject reason of recent answers ("" = accepted)

    def _fresh_index(self) -> int:
        while record_id(self.seed, self._next_index) in self.done_ids:
            self._next_index += 1
        self._next_index += 1
        return self._next_index - 1

    async def _one(self, combo: Combo) -> tuple[str, Combo, object]:
        messages = render_messages(self.spec, combo)
        try:
            result = await self.caller.acall(messages, max_tokens=self.max_tokens, label=record_id(self.seed, combo.index))
        except BudgetExhausted as e:
            return "budget", combo, e
        except CallFailed as e:
            return "failed", combo, e
        except UserError as e:  # ProviderRefused / CircuitOpen: the run stops (raised once, by the loop)
            return "fatal", combo, e
        return "answer", combo, result

    def _meta(self, combo: Combo, result: CallResult) -> dict:
        price = self.caller.price
        return {
            "provider": self.provider,
            "model": self.caller.model,
            "cost_usd": round(result.cost_usd, 8),
            "price_in_usd_per_mtok": price.in_usd_per_mtok,
            "price_out_usd_per_mtok": price.out_usd_per_mtok,
            "price_source": price.source,
            "verified": False,
            "source": "llm",
            "seed": self.seed,
            "index": combo.index,
            "run_id": self.run_id,
            "n_prompt_tokens": result.n_prompt_tokens,
            "n_completion_tokens": result.n_completion_tokens,
            "n_reasoning_tokens": result.n_reasoning_tokens,
            "finish_reason": result.finish_reason,
            "attempts": result.attempts,
            **combo.as_meta(),
        }

    def _check_quality(self) -> None:
        """Stop when almost every recent answer is rejected: a broken prompt or model must not eat the budget."""
        recent = self._recent
        if len(recent) == recent.maxlen and sum(1 for r in recent if r) >= QUALITY_STOP_SHARE * len(recent):
            reasons = Counter(r for r in recent if r)
            raise UserError(
                f"{sum(reasons.values())} of the last {len(recent)} answers were rejected ({', '.join(f'{k}: {v}' for k, v in reasons.most_common())})",
                field="provider",
                fix="read the outputs in rejects/, then fix the prompt, max_tokens or model; rerun to resume",
            )

    def _handle_answer(self, combo: Combo, result: CallResult) -> bool:
        """Write the answer as a record or a reject; True if accepted."""
        rid = record_id(self.seed, combo.index)
        meta = self._meta(combo, result)
        try:
            fields = parse_planning_output(result.text, result.finish_reason, self.spec.planning.min_steps)
            dup = self.dedup.add(rid, fields["problem"])
            if dup is not None:
                meta["duplicate_of"] = dup
                raise Rejected("near_duplicate")
        except Rejected as r:
            self.rejects.append({"id": rid, "reason": r.reason, "domain": combo.domain, "task": combo.task, "output": result.text, "meta": meta})
            self.rejected[r.reason] += 1
            self.done_ids.add(rid)
            self._recent.append(r.reason)
            self._check_quality()
            return False
        self._recent.append("")
        self.records.append({"id": rid, "domain": combo.domain, "task": combo.task, **fields, "meta": meta})
        self.done_ids.add(rid)
        self.n_accepted += 1
        return True

    async def loop(self, count: int, n_before: int, concurrency: int, budget_usd: float, progress: bool) -> str:
        in_flight: set[asyncio.Task] = set()
        retry: list[Combo] = []
        budget_blocked = False
        stopped = "count reached"
        last_postfix = 0.0
        bar = tqdm(total=count, initial=min(n_before, count), unit="rec", desc="planning", disable=not progress, dynamic_ncols=True)
        try:
            while True:
                while not budget_blocked and len(in_flight) < concurrency and n_before + self.n_accepted + len(in_flight) < count:
                    combo = retry.pop() if retry else combo_for(self.spec, self.seed, self._fresh_index())
                    in_flight.add(asyncio.create_task(self._one(combo)))
                if not in_flight:
                    break
                finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                progressed = False
                outcomes = [task.result() for task in finished]  # _one returns every outcome, never raises
                fatal = next((payload for kind, _, payload in outcomes if kind == "fatal"), None)
                disk_full: DiskFull | None = None
                for kind, combo, payload in outcomes:
                    if kind == "fatal":
                        continue
                    if kind == "budget":
                        retry.append(combo)
                    elif kind == "failed":
                        self.failed[payload.reason.split(":")[0]] += 1
                        progressed = True
                    else:
                        progressed = True
                        try:
                            if self._handle_answer(combo, payload):
                                bar.update(1)
                        except DiskFull as e:  # written (from the disk reserve); write the other paid answers in hand, then stop
                            disk_full = e if disk_full is None or not e.written else disk_full  # an unwritten one wins
                if disk_full is not None:
                    raise disk_full
                if fatal is not None:  # after the paid answers of this round are written
                    raise fatal  # in-flight calls are cancelled (and charged at worst case) below
                if any(kind == "budget" for kind, _, _ in outcomes):
                    if not in_flight:
                        stopped = "budget reached"
                        break
                    budget_blocked = True  # wait for calls in flight to settle below their worst case
                elif progressed:
                    budget_blocked = False
                if time.monotonic() - last_postfix > 0.5:  # a ledger read per update: keep it rare
                    last_postfix = time.monotonic()
                    totals = self.caller.ledger.totals()
                    bar.set_postfix_str(f"{usd(totals.spent_usd)}/{usd(budget_usd)} rejects {sum(self.rejected.values())} failed {sum(self.failed.values())}")
        finally:
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
            bar.close()
        return stopped
