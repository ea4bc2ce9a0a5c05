"""`--workers N`: the budgeted litellm calls of one run spread over N worker processes.

litellm and the OpenAI SDK cost about 8-15 ms of CPU per request (benchmarks/bench_synth.py), so one
process tops out near 1000 / that requests per second on one core. A `CallerPool` has the same `acall`
as `LLMCaller` (same results, same exceptions) but sends each call to one of N processes, each running
its own LLMCaller and event loop. Everything money- and quota-related stays where it was: every worker
reserves and settles in the folder's SQLite ledger and books the same SQLite quota schedule, so the
budget and the RPM/TPM limits hold across workers exactly as across threads. Answers come back to the
parent, which alone validates, deduplicates and writes records (one writer, one near-duplicate index).

Failure modes: the parent probes the provider with the first call alone (a wrong key costs one request);
a worker that dies is an error (its calls in flight stay charged at worst case by the ledger); when the
parent stops (normally, Ctrl-C, kill -9) the workers see their socket close, cancel their calls in flight
(charged at worst case, as a cancelled call always is) and exit.

The worker side runs as `python -m datakit.synth.workers <fd>` with a socket inherited from the parent.
Messages are pickled dicts with a 4-byte length prefix.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

from datakit.synth.ledger import BudgetExhausted, Ledger
from datakit.synth.llm import CallFailed, CallResult, CircuitBreaker, CircuitOpen, LLMCaller, ProbeGate, ProviderRefused
from datakit.synth.prices import Price
from datakit.synth.quota import Quota

_LEN = struct.Struct("!I")


async def _send(writer: asyncio.StreamWriter, msg: dict) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_LEN.pack(len(data)) + data)
    await writer.drain()


async def _recv(reader: asyncio.StreamReader) -> dict | None:
    try:
        head = await reader.readexactly(_LEN.size)
        return pickle.loads(await reader.readexactly(_LEN.unpack(head)[0]))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None  # the other side is gone


def _outcome(exc: BaseException | None, result: CallResult | None) -> dict:
    """A call's result or exception as a plain dict (exceptions with custom __init__ do not unpickle)."""
    if exc is None:
        return {"kind": "answer", "result": asdict(result)}
    if isinstance(exc, BudgetExhausted):
        return {"kind": "budget", "args": (exc.needed_usd, exc.remaining_usd, exc.budget_usd)}
    if isinstance(exc, CallFailed):
        return {"kind": "failed", "args": (exc.reason, exc.status_code, exc.attempts, exc.cost_usd)}
    if isinstance(exc, (ProviderRefused, CircuitOpen)):
        return {"kind": type(exc).__name__, "what": exc.what, "field": exc.field, "fix": exc.fix}
    return {"kind": "error", "text": "".join(traceback.format_exception(exc))}


def _raise_or_return(out: dict) -> CallResult:
    kind = out["kind"]
    if kind == "answer":
        return CallResult(**out["result"])
    if kind == "budget":
        raise BudgetExhausted(*out["args"])
    if kind == "failed":
        raise CallFailed(*out["args"])
    if kind in ("ProviderRefused", "CircuitOpen"):
        cls = ProviderRefused if kind == "ProviderRefused" else CircuitOpen
        raise cls(out["what"], field=out["field"], fix=out["fix"])
    raise RuntimeError(f"synth worker failed:\n{out['text']}")


# -- the worker process ----------------------------------------------------------------------------------
async def _serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_connection(sock=sock)
    config = await _recv(reader)
    if config is None:
        return
    price = Price(**config.pop("price"))
    quota_args = config.pop("quota")
    ledger = Ledger(config.pop("folder"), config.pop("budget_usd"))
    quota = Quota(quota_args.pop("folder"), quota_args.pop("key"), **quota_args)
    caller = LLMCaller(config.pop("model"), price, ledger, breaker=CircuitBreaker(), quota=quota, probe=False, **config)
    await _send(writer, {"ready": os.getpid()})  # litellm is imported: the parent starts sending work
    tasks: dict[int, asyncio.Task] = {}
    write_lock = asyncio.Lock()

    async def run_one(job_id: int, job: dict) -> None:
        try:
            result = await caller.acall(job["messages"], max_tokens=job["max_tokens"], label=job["label"])
            out = _outcome(None, result)
        except asyncio.CancelledError:
            out = {"kind": "cancelled"}
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the parent
            out = _outcome(exc, None)
        tasks.pop(job_id, None)
        async with write_lock:
            try:
                await _send(writer, {"id": job_id, **out})
            except ConnectionError:
                pass

    try:
        while (msg := await _recv(reader)) is not None:
            if "cancel" in msg:
                task = tasks.get(msg["cancel"])
                if task is not None:
                    task.cancel()
            else:
                tasks[msg["id"]] = asyncio.create_task(run_one(msg["id"], msg))
    finally:  # the parent is gone or done: calls in flight are cancelled (charged at worst case)
        for task in list(tasks.values()):
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        writer.close()
        ledger.close()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business; we stop when it closes
    asyncio.run(_serve(int(sys.argv[1])))


# -- the parent side --------------------------------------------------------------------------------------
class _Worker:
    def __init__(self, proc: subprocess.Popen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.proc, self.reader, self.writer = proc, reader, writer
        self.pending: dict[int, asyncio.Future] = {}
        self.lock = asyncio.Lock()
        self.listener: asyncio.Task | None = None
        self.error: BaseException | None = None  # set when the process is gone


class CallerPool:
    """`LLMCaller.acall` over N worker processes. Build it from a configured LLMCaller (its settings,
    price, ledger folder and quota are handed to the workers); use inside one event loop:

        pool = CallerPool(caller, n_workers=4)
        await pool.start()
        result = await pool.acall(messages, max_tokens=2048, label="seed-17")
        await pool.close()
    """

    def __init__(self, caller: LLMCaller, n_workers: int):
        self.caller = caller
        self.n_workers = n_workers
        self.model, self.price, self.ledger, self.extra = caller.model, caller.price, caller.ledger, caller.extra
        self.gate = ProbeGate()
        self._workers: list[_Worker] = []
        self._next_id = 0

    def redact(self, text: str) -> str:
        return self.caller.redact(text)

    def _config(self) -> dict:
        c = self.caller
        q = c.quota
        return {
            "model": c.model, "price": {"in_usd_per_mtok": c.price.in_usd_per_mtok, "out_usd_per_mtok": c.price.out_usd_per_mtok,
                                        "source": c.price.source},
            "folder": str(c.ledger.folder), "budget_usd": c.ledger.budget_usd,
            "api_key": c._api_key, "api_base": c.api_base, "api_version": c.api_version, "timeout_s": c.timeout_s,
            "max_attempts": c.max_attempts, "backoff_base_s": c.backoff_base_s, "backoff_max_s": c.backoff_max_s,
            "extra": c.extra,
            "quota": {"folder": str(q.path.parent), "key": q.key, "rpm": q.rpm, "tpm": q.tpm, "tpm_counts": q.tpm_counts,
                      "burst_s": q.burst_s} if q is not None else {"folder": str(c.ledger.folder), "key": c.model},
        }

    async def start(self) -> None:
        config = self._config()
        for k in range(self.n_workers):
            parent_sock, child_sock = socket.socketpair()
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])))
            proc = subprocess.Popen([sys.executable, "-m", "datakit.synth.workers", str(child_sock.fileno())],
                                    pass_fds=[child_sock.fileno()], env=env)
            child_sock.close()
            reader, writer = await asyncio.open_connection(sock=parent_sock)
            worker = _Worker(proc, reader, writer)
            await _send(writer, dict(config, seed=k))  # the seed of the backoff jitter
            self._workers.append(worker)
        for worker in self._workers:  # wait until every worker has imported litellm (seconds of CPU each)
            if await _recv(worker.reader) is None:
                raise RuntimeError(f"synth worker process {worker.proc.pid} failed to start (exit code {worker.proc.wait()})")
            worker.listener = asyncio.create_task(self._listen(worker))

    async def _listen(self, worker: _Worker) -> None:
        while (msg := await _recv(worker.reader)) is not None:
            fut = worker.pending.pop(msg.pop("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        worker.error = error = RuntimeError(f"synth worker process {worker.proc.pid} stopped (exit code {worker.proc.poll()}); "
                                            "its calls in flight are charged at worst case; rerun to resume")
        for fut in worker.pending.values():
            if not fut.done():
                fut.set_exception(error)
        worker.pending.clear()

    def _pick(self) -> _Worker:
        alive = [w for w in self._workers if w.error is None]
        if not alive:
            raise self._workers[0].error
        return min(alive, key=lambda w: len(w.pending))

    async def acall(self, messages: list[dict], *, max_tokens: int, label: str = "") -> CallResult:
        """One budgeted call in a worker process; raises what LLMCaller.acall raises."""
        await self.gate.wait()
        worker = self._pick()
        job_id = self._next_id = self._next_id + 1
        fut = asyncio.get_running_loop().create_future()
        worker.pending[job_id] = fut
        try:
            async with worker.lock:
                await _send(worker.writer, {"id": job_id, "messages": messages, "max_tokens": max_tokens, "label": label})
            if worker.error is not None and not fut.done():
                raise worker.error
            out = await fut
        except asyncio.CancelledError:
            worker.pending.pop(job_id, None)
            try:
                async with worker.lock:
                    await _send(worker.writer, {"cancel": job_id})
            except (ConnectionError, RuntimeError):
                pass
            self.gate.done(None, answered=False)
            raise
        except BaseException:
            self.gate.done(None, answered=False)
            raise
        if out["kind"] == "cancelled":
            self.gate.done(None, answered=False)
            raise asyncio.CancelledError()
        refused = ProviderRefused(out["what"], field=out["field"], fix=out["fix"]) if out["kind"] == "ProviderRefused" else None
        self.gate.done(refused, answered=out["kind"] != "budget")
        return _raise_or_return(out)

    async def close(self) -> None:
        for w in self._workers:
            w.writer.close()
        for w in self._workers:
            try:
                await asyncio.wait_for(asyncio.to_thread(w.proc.wait), 30)
            except asyncio.TimeoutError:
                w.proc.kill()
                w.proc.wait()
            if w.listener is not None:
                w.listener.cancel()
        self._workers.clear()


if __name__ == "__main__":
    main()
