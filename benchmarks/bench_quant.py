"""Quantization report on this CPU: size, perplexity, ppl ratio and mean KL vs f16, prompt and generation
tokens/s per GGUF (f16, Q8_0, Q6_K, Q5_K_M, Q4_K_M), measured by llama.cpp on held-out documents.

    python benchmarks/bench_quant.py [--steps 150] [--tokens 16384] [--out bench-quant]

The model: the `small` preset (hidden 256, MLP 512, 2 layers, 4 heads / 2 KV heads, vocab 4,096: rows
are multiples of 256, so the k-quants apply as they would on the plan's model) trained here with a real
`titan run --device cpu` on the embedded samples' prose, Python and verified planning records (90% of the
documents; the other 10% are the held-out mixture scored here). Then `titan export --to gguf` and
`titan quant-report`. Prints the table and writes quant_report.md + .png into <out>/gguf.

A 2.2M-parameter model trained for minutes is not the plan's 1.6B model: read the ordering and the KL
figures, and the anchors (llama.cpp's Llama-3-8B table, a ~2B model) for what a trained model loses.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engines" / "titan" / "tests"))

QUANTS = ["f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=150, help="training steps of 8 x 256 tokens")
    ap.add_argument("--tokens", type=int, default=16384, help="held-out next-token predictions per file")
    ap.add_argument("--ctx", type=int, default=256, help="chunk length (the model's trained context)")
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    args = ap.parse_args()

    from export_fixture import make_trained

    from datakit_titan.export.checkpoint import load_model, resolve
    from datakit_titan.export.gguf import export_gguf
    from datakit_titan.export.report import measure, table, write_report
    from datakit_titan.export.verify import check_gguf

    root = args.out or Path(tempfile.mkdtemp(prefix="bench-quant-"))
    t0 = time.perf_counter()
    paths = make_trained(root, steps=args.steps)
    t_train = time.perf_counter() - t0
    t = resolve(paths["output"])
    model = load_model(t)
    t0 = time.perf_counter()
    files = export_gguf(t, root / "gguf", QUANTS, model=model, force=True)
    t_export = time.perf_counter() - t0
    check = check_gguf(t, model, files[0])
    rep = measure(root / "gguf", paths["heldout"], n_tokens=args.tokens, ctx=args.ctx)
    print(f"\nmodel: preset small, {args.steps} steps ({t_train:,.0f} s incl. corpus + tokenizer), checkpoint {t.checkpoint}")
    print(f"export of {len(files)} GGUFs: {t_export:,.1f} s; f16 vs TorchTitan: max |logit diff| {check['max_abs_logit_diff']:.3g}, "
          f"tokenization equal {check['tokenization_equal']}, greedy equal {check['greedy_equal']}")
    print(f"held-out: {rep['n_tokens_scored']:,} predictions, ctx {rep['ctx']}, {rep['cpu']}, {rep['n_threads']} threads\n")
    print(table(rep))
    print(f"\nwrote {write_report(rep, root / 'gguf')}")


if __name__ == "__main__":
    main()
