"""The model card (README.md) of an export: what the model is, what it was trained on, how to run it.

Everything is read from files that exist: the phase file(s) (this phase and those it started from,
through init_from), each phase's mixture manifest (spec hash, per-source tokens) and, where they
exist, eval results under `<run>/eval/*.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

from datakit.contract import load_manifest
from datakit_titan.estimate import human, param_counts
from datakit_titan.export.checkpoint import PHASE_COPY, Trained
from datakit_titan.kinds import load_any_phase


def _phase_chain(t: Trained) -> list:
    """This phase, then the phases it started from (init_from -> that run's recorded phase.toml)."""
    chain, phase, seen = [t.phase], t.phase, set()
    while phase.phase.init_from and phase.phase.init_from not in seen:
        seen.add(phase.phase.init_from)
        copy = Path(phase.phase.init_from) / PHASE_COPY
        if not copy.is_file():
            break
        phase = load_any_phase(copy)
        chain.append(phase)
    return chain


def _mixture_table(folder: str) -> list[str]:
    try:
        m = load_manifest(folder)
    except Exception as e:  # a card is still written when a past phase's mixture was moved
        return [f"(mixture {folder} not readable here: {e})"]
    rows = [f"mixture `{m.name}` ({folder}): {m.total_tokens:,} tokens, {m.total_docs:,} documents, seq_len {m.seq_len}, "
            f"spec sha256 `{m.spec_sha256[:16]}`, tokenizer sha256 `{m.tokenizer.sha256[:16]}`", "",
            "| source | tokens | share | epochs |", "|---|---:|---:|---:|"]
    for s in m.sources:
        rows.append(f"| {s.name} | {s.tokens_written:,} | {s.tokens_written / max(m.total_tokens, 1):.1%} | {s.epochs:.2f} |")
    return rows


def _evals(t: Trained) -> list[str]:
    folder = Path(t.phase.phase.output) / "eval"
    rows = []
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        nums = {k: v for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        rows.append(f"- `{f.name}`: " + ", ".join(f"{k} {v:.4g}" for k, v in nums.items()))
    return rows or ["No eval results were found under the run's `eval/` folder."]


def model_card(t: Trained, *, fmt: str, dtype: str = "", files: list[str] | None = None) -> str:
    p = t.preset
    n = param_counts(p, t.vocab_size)["total"]
    r = t.rope
    rope = f"theta {r['theta']:,.0f}" + (f", {r['scaling']} scaling x{r['factor']} from {r['original_seq_len']}" if r["scaling"] != "none" else "")
    lines = [
        f"# {t.name} ({human(n)} parameters)", "",
        f"A Llama-architecture decoder trained with datakit + TorchTitan: {p.n_layers} layers, hidden {p.dim}, MLP {p.ffn_hidden}, "
        f"{p.n_heads} heads / {p.n_kv_heads} KV heads, vocab {t.vocab_size:,}, RoPE {rope}, trained context {t.context:,}, "
        f"{'tied' if p.tie_embeddings else 'untied'} embeddings. Exported from `{t.checkpoint}` (step {t.step:,}) "
        + (f"as {fmt} ({dtype})." if dtype else f"as {fmt}."), "",
        "## Phases", "",
    ]
    for ph in _phase_chain(t):
        steps = ph.stage_steps()
        lines += [f"### {ph.phase.name} (loss {ph.phase.loss}, {ph.phase.tokens:,} tokens, {sum(steps):,} steps on one GPU's batch)", "",
                  "stages: " + ", ".join(f"seq_len {s.seq_len}" for s in ph.stage)
                  + (f"; started from `{ph.phase.init_from}`" if ph.phase.init_from else ""), "", *_mixture_table(ph.phase.mixture), ""]
    lines += ["## Eval", "", *_evals(t), "", "## Use", ""]
    if fmt == "hf":
        lines += ["```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
                  "tok = AutoTokenizer.from_pretrained(\"<this folder>\")", "model = AutoModelForCausalLM.from_pretrained(\"<this folder>\")",
                  "ids = tok(\"<problem>Plan a 3-day trip.</problem>\", return_tensors=\"pt\").input_ids",
                  "print(tok.decode(model.generate(ids, max_new_tokens=200)[0]))", "```"]
    else:
        lines += ["Files: " + ", ".join(f"`{f}`" for f in files or []), "",
                  "```bash", "titan generate <file>.gguf \"<problem>Plan a 3-day trip.</problem>\"",
                  "llama-cli -m <file>.gguf -p \"<problem>Plan a 3-day trip.</problem>\" -n 200",
                  "llama-server -m <file>.gguf --port 8080   # OpenAI-compatible /v1/completions", "```",
                  "", "See quant_report.md (after `titan quant-report`) for size, perplexity and speed per file."]
    return "\n".join(lines) + "\n"
