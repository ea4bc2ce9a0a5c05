"""Export commands: `titan export`, `titan generate`, `titan quant-report` (registered in datakit_titan.cli).

    titan export outputs/midtrain --to hf   --out exports/midtrain-hf
    titan export outputs/midtrain --to gguf --quant f16,q8_0,q6_k,q5_k_m,q4_k_m --out exports/midtrain-gguf
    titan generate exports/midtrain-gguf/model-q4_k_m.gguf "<problem>Plan a 3-day trip to Rome.</problem>"
    titan quant-report exports/midtrain-gguf --data data/mixtures/heldout
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from datakit.errors import UserError


def _require(*modules: str) -> None:
    """The export extra is optional; say how to get it instead of an ImportError."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"{', '.join(missing)} not installed", fix="pip install -e \"engines/titan[export]\" (make install does it)")


def export(
    source: Path = typer.Argument(..., help="a run's output folder (outputs/midtrain), a step-N folder in it, or a phase file"),
    to: str = typer.Option(..., "--to", help="hf (transformers folder) or gguf (llama.cpp files)"),
    out: Path = typer.Option(..., "--out", help="folder to write, e.g. exports/midtrain-hf; written under a temporary name, renamed when complete"),
    quant: str = typer.Option("f16,q8_0,q6_k,q5_k_m,q4_k_m", help="gguf: comma-separated types; f32/f16/bf16 are written directly, "
                              "q8_0, q6_k, q5_k_m, q4_k_m, q5_k_s, q4_k_s, q5_0, q4_0, q3_k_m, q2_k, ... by llama.cpp's quantizer"),
    dtype: str = typer.Option("bfloat16", help="hf: bfloat16 (as trained on GPU), float16 or float32"),
    step: int = typer.Option(None, help="export this step's checkpoint (default: the newest complete one)"),
    phase: Path = typer.Option(None, "--phase", help="the phase file the run was trained with (default: <run>/phase.toml, left by `titan run`)"),
    tokenizer: Path = typer.Option(None, help="the mixture's tokenizer.json when its recorded path does not resolve from here"),
    check: bool = typer.Option(False, "--check", help="after writing, compare with TorchTitan: tokenization, max logit diff, greedy tokens"),
    force: bool = typer.Option(False, "--force", help="replace an existing --out folder"),
):
    """Export a trained checkpoint (any phase, phase 3 included) for inference: a Hugging Face folder
    (safetensors, config.json with the phase's RoPE and context, tokenizer with the planning tags,
    model card) or GGUF files for llama.cpp (f16 + quantized). The checkpoint must match the phase's
    model preset; an interrupted export leaves no folder that looks complete.

    Example: titan export outputs/midtrain --to gguf --quant f16,q4_k_m --out exports/midtrain-gguf
    """
    from datakit_titan.export.checkpoint import load_model, resolve

    _require("transformers", "safetensors", *(["gguf", "llama_cpp"] if to == "gguf" else []))
    if to not in ("hf", "gguf"):
        raise UserError(f"unknown export format {to!r}", field="--to", fix="use hf or gguf")
    if to == "gguf":
        from datakit_titan.export.quantize import parse_quants

        quants = parse_quants(quant)  # before any work
    t = resolve(source, phase_file=phase, step=step, tokenizer=tokenizer)
    print(f"{t.name}: {t.checkpoint} (step {t.step:,}), model {t.phase.phase.model}, vocab {t.vocab_size:,}, "
          f"RoPE theta {t.rope['theta']:,.0f} ({t.rope['scaling']}), context {t.context:,}")
    model = load_model(t)
    if to == "hf":
        from datakit_titan.export.hf import export_hf

        export_hf(t, out, dtype=dtype, force=force, model=model)
        print(f"wrote {out}: transformers AutoModelForCausalLM / AutoTokenizer folder ({dtype})")
        if check:
            from datakit_titan.export.verify import check_hf

            r = check_hf(t, model, out)
            print(f"check vs TorchTitan: tokenization equal {r['tokenization_equal']}, max |logit diff| {r['max_abs_logit_diff']:.3g} "
                  f"({dtype} weights)")
        return
    from datakit_titan.export.gguf import export_gguf

    files = export_gguf(t, out, quants, force=force, model=model)
    print(f"wrote {out}: {', '.join(p.name for p in files)}")
    if check:
        from datakit_titan.export.verify import check_gguf

        for p in files:
            r = check_gguf(t, model, p)
            print(f"check {p.name} in llama.cpp vs TorchTitan: tokenization equal {r['tokenization_equal']}, "
                  f"max |logit diff| {r['max_abs_logit_diff']:.3g}, greedy tokens equal {r['greedy_equal']}")


def generate(
    model: Path = typer.Argument(..., help="a GGUF file, e.g. exports/midtrain-gguf/model-q4_k_m.gguf"),
    prompt: str = typer.Argument(..., help="the text to continue, e.g. \"<problem>Plan ...</problem>\" (BOS is added)"),
    max_tokens: int = typer.Option(256, help="stop after this many new tokens"),
    temperature: float = typer.Option(0.0, help="0 = greedy; e.g. 0.7 to sample"),
    top_k: int = typer.Option(40, help="sample among the k most likely tokens"),
    top_p: float = typer.Option(0.95, help="nucleus sampling mass"),
    min_p: float = typer.Option(0.05, help="drop tokens below min_p x the top token's probability"),
    repeat_penalty: float = typer.Option(1.0, help="> 1 discourages repeating recent tokens"),
    seed: int = typer.Option(0, help="sampling seed"),
    ctx: int = typer.Option(0, help="context in tokens (0: the model's trained context)"),
    threads: int = typer.Option(None, help="CPU threads (default: all)"),
    stop_at_answer: bool = typer.Option(True, "--stop-at-answer/--no-stop-at-answer", help="stop after </answer> (and always at </s>)"),
):
    """Generate text with llama.cpp's C++ inference (through llama-cpp-python): streams the text, then
    prints why it stopped and prompt / generation tokens per second.

    Example: titan generate exports/midtrain-gguf/model-q4_k_m.gguf "<problem>Plan a 3-day trip.</problem>"
    """
    _require("llama_cpp")
    from datakit_titan.export.generate import generate as run, open_gguf

    llm = open_gguf(model, n_ctx=ctx, n_threads=threads, seed=seed)
    try:
        sys.stdout.write(prompt)
        g = run(llm, prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                repeat_penalty=repeat_penalty, stop_at_answer=stop_at_answer, on_piece=lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    finally:
        llm.close()
    print(f"\n\n[{len(g.tokens)} tokens, stop: {g.stop}; prompt {g.n_prompt} tokens at {g.prompt_tps:,.0f} tok/s, "
          f"generation {g.gen_tps:,.1f} tok/s; llama.cpp, {model.name}]")


def quant_report(
    folder: Path = typer.Argument(..., help="a GGUF export folder (titan export --to gguf)"),
    data: Path = typer.Option(..., "--data", help="a built mixture to score on; pass a held-out one (data the model did not train on)"),
    tokens: int = typer.Option(16384, help="next-token predictions to score per file"),
    ctx: int = typer.Option(0, help="chunk length in tokens (0: the model's trained context)"),
    threads: int = typer.Option(None, help="CPU threads for llama.cpp (default: all)"),
):
    """Per GGUF file: size, perplexity, perplexity ratio and mean KL divergence vs f16, and prompt and
    generation tokens/s on this machine, beside published anchors. Writes quant_report.md (+ .png
    chart of size vs perplexity, + .json) into the folder. The mixture's shards are verified first.

    Example: titan quant-report exports/midtrain-gguf --data data/mixtures/heldout
    """
    _require("llama_cpp")
    from datakit_titan.export.report import measure, table, write_report

    rep = measure(folder, data, n_tokens=tokens, ctx=ctx, n_threads=threads)
    print(table(rep))
    if rep["seen_in_training"]:
        print("note: these tokens come from the mixture the model trained on; pass a held-out mixture for honest numbers")
    print(f"wrote {write_report(rep, folder)}")
