"""`--batch`: the provider's Batch API (OpenAI, Azure: half price) under the same hard budget.

One job = up to `planning.batch_size` requests. Before submitting, the whole job's worst case (at the
batch price) is reserved in the ledger, shrinking the job to what the budget still allows. The job's
id is written to `<out>/batches/<batch_id>.json` right after submission; a rerun collects jobs left
`submitted` by an interrupted run before starting new ones. When a job completes, its output is read,
the reservation is settled with the real usage (or, if the process that reserved it died, it stays
charged at worst case: the ledger errs high), and each answer goes through the same validation and
near-duplicate check as online calls. Submitted-but-unrecorded jobs (a kill in the instant between
submission and the state file) stay charged at worst case and their answers are not collected.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from pathlib import Path

from datakit.errors import UserError
from datakit.synth.combos import combo_for, record_id, render_messages
from datakit.synth.llm import CallResult, LLMCaller
from datakit.synth.prices import Price

BATCH_PROVIDERS = ("azure", "openai")  # litellm prefixes whose Batch API we drive
BATCH_DISCOUNT = 0.5  # both bill batch jobs at half the list price
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def batch_price(price: Price) -> Price:
    return Price(price.in_usd_per_mtok * BATCH_DISCOUNT, price.out_usd_per_mtok * BATCH_DISCOUNT, f"{price.source} x{BATCH_DISCOUNT:g} batch")


def check_batch_supported(provider: str, model: str, profile_batch: bool) -> None:
    prefix = model.split("/", 1)[0]
    if not profile_batch or prefix not in BATCH_PROVIDERS:
        raise UserError(
            f"--batch is not supported for this provider ({provider}, {model})",
            field="--batch",
            fix=f"run without --batch, or use a provider whose profile has batch = true ({', '.join(BATCH_PROVIDERS)})",
        )


def _write_state(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


class BatchRunner:
    """Submits and collects Batch API jobs for a planning run (`run` is planning._Run)."""

    def __init__(self, run, caller: LLMCaller, batches_dir: Path, batch_size: int, poll_s: float):
        self.run, self.caller = run, caller
        self.dir = batches_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.batch_size, self.poll_s = batch_size, poll_s
        self.provider_prefix, self.body_model = caller.model.split("/", 1)
        self.litellm = caller.litellm

    def _creds(self) -> dict:
        kw = {"custom_llm_provider": self.provider_prefix, "api_key": self.caller._api_key}
        if self.caller.api_base:
            kw["api_base"] = self.caller.api_base
        if self.caller.api_version:
            kw["api_version"] = self.caller.api_version
        return kw

    async def loop(self, count: int, n_before: int, bar) -> str:
        for path in sorted(self.dir.glob("*.json")):
            state = json.loads(path.read_text())
            if state["status"] == "submitted":
                await self._collect(path, state, bar)
        while n_before + self.run.n_accepted < count:
            n = min(self.batch_size, count - n_before - self.run.n_accepted)
            combos = [combo_for(self.run.spec, self.run.seed, self.run._fresh_index()) for _ in range(n)]
            messages = [render_messages(self.run.spec, c) for c in combos]
            worst_each = [self.caller.worst_case_usd(m, self.run.max_tokens) for m in messages]
            remaining = self.caller.ledger.remaining_usd()
            while worst_each and sum(worst_each) > remaining:  # shrink the job to what the budget allows
                combos.pop(), messages.pop(), worst_each.pop()
            if not combos:
                return "budget reached"
            self.run._next_index = combos[-1].index + 1  # indices dropped by the shrink are asked for later
            rid = self.caller.ledger.reserve(sum(worst_each), label=f"batch of {len(combos)}")
            try:
                batch_id = await self._submit(combos, messages)
            except Exception as exc:
                self.caller.ledger.release(rid, note="batch submission failed: not billed")
                raise UserError(f"batch submission failed: {self.caller.redact(str(exc))[:300]}", field="--batch",
                                fix="check the provider's Batch API access, or run without --batch") from None
            path = self.dir / f"{batch_id}.json"
            state = {"batch_id": batch_id, "status": "submitted", "reservation_id": rid, "worst_usd": sum(worst_each),
                     "indices": [c.index for c in combos], "seed": self.run.seed, "submitted_unix": time.time()}
            _write_state(path, state)
            await self._collect(path, state, bar)
        return "count reached"

    async def _submit(self, combos, messages) -> str:
        lines = []
        for combo, msgs in zip(combos, messages):
            body = {"model": self.body_model, "messages": msgs, "max_tokens": self.run.max_tokens, **self.caller.extra}
            lines.append(json.dumps({"custom_id": record_id(self.run.seed, combo.index), "method": "POST", "url": "/v1/chat/completions", "body": body}))
        data = ("\n".join(lines) + "\n").encode()
        f = await self.litellm.acreate_file(file=("planning.jsonl", io.BytesIO(data), "application/jsonl"), purpose="batch", **self._creds())
        b = await self.litellm.acreate_batch(completion_window="24h", endpoint="/v1/chat/completions", input_file_id=f.id, **self._creds())
        return b.id

    async def _collect(self, path: Path, state: dict, bar) -> None:
        while True:
            b = await self.litellm.aretrieve_batch(batch_id=state["batch_id"], **self._creds())
            if b.status in TERMINAL:
                break
            await asyncio.sleep(self.poll_s)
        answers = []
        if getattr(b, "output_file_id", None):
            content = await self.litellm.afile_content(file_id=b.output_file_id, **self._creds())
            raw = content.content if hasattr(content, "content") else bytes(content)
            answers = [json.loads(x) for x in raw.decode().splitlines() if x.strip()]
        price = self.caller.price
        total_usd, n_in_all, n_out_all = 0.0, 0, 0
        by_id = {}
        for a in answers:
            body = ((a.get("response") or {}).get("body")) or {}
            usage = body.get("usage") or {}
            n_in, n_out = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
            cost = price.cost_usd(n_in, n_out)
            total_usd += cost
            n_in_all, n_out_all = n_in_all + n_in, n_out_all + n_out
            if (a.get("response") or {}).get("status_code") == 200 and body.get("choices"):
                choice = body["choices"][0]
                by_id[a["custom_id"]] = CallResult((choice.get("message") or {}).get("content") or "", choice.get("finish_reason"), n_in, n_out, 0, cost, 1)
        if self.caller.ledger.state(state["reservation_id"]) == "reserved":
            self.caller.ledger.settle(state["reservation_id"], total_usd, n_prompt_tokens=n_in_all, n_completion_tokens=n_out_all,
                                      note=f"batch {state['batch_id']} {b.status}")
        for index in state["indices"]:
            rid = record_id(state["seed"], index)
            if rid in self.run.done_ids:
                continue
            result = by_id.get(rid)
            if result is None:
                self.run.failed[f"batch_{b.status}"] += 1
                continue
            if self.run._handle_answer(combo_for(self.run.spec, state["seed"], index), result):
                bar.update(1)
        _write_state(path, dict(state, status="collected", batch_status=b.status, cost_usd=total_usd))
