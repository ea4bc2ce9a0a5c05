"""Eval throughput on CPU: planning-suite items/s (generate + check) on a model of the `tiny` preset's shape,
at several generation batch sizes, and held-out loss tokens/s.

    python benchmarks/bench_eval.py [--model outputs/smoke_sft_dpo | exports/x-hf] [--problems 20] [--max-new-tokens 128]

Without --model it builds its own: datakit's BPE tokenizer (vocab 4,096) trained on the embedded samples
and procedural records, and a randomly initialised Llama of the tiny preset's shape (64 wide, 2 layers,
context 1,024). A random model rarely stops early, so every item generates the full --max-new-tokens:
the figures are a lower bound for a trained model that stops at </answer>. Generation is greedy;
an item is one problem (prompt -> completion -> checker).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engines" / "titan" / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a run folder or HF export (default: a fresh tiny-shaped model)")
    ap.add_argument("--problems", type=int, default=20, help="planning problems (easy; 4 per domain for 20)")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batches", default="1,8,20")
    args = ap.parse_args()
    import torch

    from datakit.eval.planning import evaluate, heldout_problems
    from datakit_titan.eval.loss import heldout_loss
    from datakit_titan.eval.model import open_model

    tmp = tempfile.TemporaryDirectory()
    if args.model:
        model = open_model(args.model, device="cpu")
        heldout = Path(model.mixture) / "heldout" if model.mixture else None
    else:
        from eval_fixture import make_hf_model

        fx = make_hf_model(Path(tmp.name))
        model = open_model(fx["hf"], mixture=fx["mixture"], device="cpu")
        heldout = fx["heldout"]
    per_cell = max(1, args.problems // 5)
    problems = [p for p in heldout_problems(per_cell, ("easy",)) if model.count_tokens(p.prompt) + args.max_new_tokens <= model.context]
    print(f"model {model.hf_dir} (context {model.context:,}, torch threads {torch.get_num_threads()}); {len(problems)} easy problems, "
          f"max {args.max_new_tokens} new tokens")
    for b in [int(x) for x in args.batches.split(",")]:
        t0 = time.perf_counter()
        r = evaluate(problems, lambda prompts, n: model.generate(prompts, n=n, max_new_tokens=args.max_new_tokens, batch=b))
        dt = time.perf_counter() - t0
        print(f"planning greedy, batch {b:>3}: {len(problems) / dt:7.2f} items/s ({dt:.1f} s; valid {r['greedy']['all']['valid']['k']}"
              f"/{len(problems)}, format errors {r['greedy']['all']['format_error']['k']})")
    if heldout is not None:
        t0 = time.perf_counter()
        h = heldout_loss(model, heldout)
        dt = time.perf_counter() - t0
        print(f"held-out loss: {h['all']['tokens'] / dt:,.0f} tokens/s ({h['all']['tokens']:,} tokens, {dt:.1f} s, verify included)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
