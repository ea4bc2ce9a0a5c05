"""The model `titan eval` scores: a trained run (its checkpoint, exported once to a transformers folder
under `<run>/eval/hf-step-N`) or an HF export folder (`titan export --to hf`). Both are evaluated through
transformers' LlamaForCausalLM, the same weights lm-evaluation-harness loads.

    m = open_model("outputs/midtrain")                 # newest checkpoint of the run
    m = open_model("exports/midtrain-hf", mixture="data/mixtures/midtrain")
    nll = m.token_nll([np.array([1, 52, 9, 2])])       # per-token negative log-likelihood (nats)
    m.generate(["<problem>..</problem>"], n=1)          # greedy; n > 1 samples
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datakit.contract import load_manifest, sha256_file
from datakit.errors import UserError

STOP_TEXT = "</answer>"


def checkpoint_sha256(step_dir: Path) -> str:
    """A DCP checkpoint's fingerprint: sha256 of its .metadata plus every file's name and size (hashing a
    1.6B model's shards on every eval would cost minutes; the metadata pins names, shapes and offsets)."""
    h = hashlib.sha256((step_dir / ".metadata").read_bytes())
    for p in sorted(step_dir.iterdir()):
        h.update(f"{p.name}:{p.stat().st_size}".encode())
    return h.hexdigest()


@dataclass
class EvalModel:
    hf_dir: Path
    model: object  # transformers LlamaForCausalLM
    tokenizer: object  # tokenizers.Tokenizer (BOS added by its post-processor)
    context: int  # trained context (max_position_embeddings)
    bos_id: int
    eos_id: int
    pad_id: int
    device: str
    step: int | None = None
    run: Path | None = None  # the run folder, when evaluating a checkpoint
    mixture: Path | None = None  # the mixture it trained on (held-out slice: <mixture>/heldout)
    hashes: dict = field(default_factory=dict)  # checkpoint, tokenizer, data sha256s for the result file

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def token_nll(self, rows: list[np.ndarray], batch: int = 8) -> list[np.ndarray]:
        """Per-token NLL (nats) of predicting tokens[1:] from their prefix, one array per row."""
        import torch

        out = []
        for i in range(0, len(rows), batch):
            chunk = [np.asarray(r[: self.context], np.int64) for r in rows[i:i + batch]]
            width = max(len(r) for r in chunk)
            ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for j, r in enumerate(chunk):
                ids[j, :len(r)] = torch.from_numpy(r)
                mask[j, :len(r)] = 1
            with torch.no_grad():
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits.float()
                logp = torch.log_softmax(logits[:, :-1], -1)
                nll = -logp.gather(-1, ids[:, 1:].to(self.device).unsqueeze(-1)).squeeze(-1).cpu().numpy()
            out += [nll[j, : len(r) - 1].astype(np.float64) for j, r in enumerate(chunk)]
        return out

    def generate(self, prompts: list[str], n: int = 1, max_new_tokens: int = 256, temperature: float = 0.8, top_p: float = 0.95,
                 batch: int = 16, seed: int = 0) -> list[list[str]]:
        """Completions per prompt, batched with left padding: greedy for n = 1, sampled for n > 1; stops at
        </s> or </answer>."""
        import torch

        stop = [self.eos_id] + ([self.tokenizer.token_to_id(STOP_TEXT)] if self.tokenizer.token_to_id(STOP_TEXT) is not None else [])
        torch.manual_seed(seed)
        flat = [p for p in prompts for _ in range(n)]
        texts: list[str] = []
        for i in range(0, len(flat), batch):
            enc = [self.encode(p) for p in flat[i:i + batch]]
            room = [self.context - len(e) for e in enc]
            if min(room) < 1:
                raise UserError(f"a prompt of {max(len(e) for e in enc):,} tokens does not fit the model's {self.context:,}-token context",
                                field="prompt", fix="evaluate a model trained at a longer context, or shorten the probe")
            width = max(len(e) for e in enc)
            ids = torch.full((len(enc), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(enc), width), dtype=torch.long)
            for j, e in enumerate(enc):
                ids[j, width - len(e):] = torch.tensor(e)
                mask[j, width - len(e):] = 1
            kwargs = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0) if n > 1 else dict(do_sample=False)
            with torch.no_grad():
                gen = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                          max_new_tokens=min(max_new_tokens, min(room)), eos_token_id=stop, pad_token_id=self.pad_id,
                                          **kwargs)
            for row in gen[:, width:].cpu().tolist():
                cut = next((k for k, t in enumerate(row) if t in stop), None)
                keep = row if cut is None else row[: cut + (1 if row[cut] != self.eos_id else 0)]
                texts.append(self.tokenizer.decode([t for t in keep if t != self.pad_id], skip_special_tokens=False))
        return [texts[k * n:(k + 1) * n] for k in range(len(prompts))]


def _device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def load_hf(hf_dir: Path, device: str | None = None) -> EvalModel:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    dev = _device(device)
    cfg = json.loads((hf_dir / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.bfloat16 if dev == "cuda" else torch.float32).to(dev).eval()
    tok = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
    return EvalModel(hf_dir=hf_dir, model=model, tokenizer=tok, context=int(cfg.get("max_position_embeddings", 2048)),
                     bos_id=int(cfg.get("bos_token_id", 1)), eos_id=int(cfg.get("eos_token_id", 2)), pad_id=int(cfg.get("pad_token_id") or 0),
                     device=dev)


def open_model(source: str | Path, *, mixture: str | Path | None = None, step: int | None = None, phase: str | Path | None = None,
               tokenizer: str | Path | None = None, device: str | None = None) -> EvalModel:
    """A run folder / step folder / phase file (checkpoint, exported to HF once) or an HF export folder."""
    source = Path(source)
    if source.is_dir() and (source / "config.json").is_file():
        m = load_hf(source, device)
        m.hashes = {"model_sha256": _files_sha256(sorted(source.glob("*.safetensors"))), "tokenizer_sha256": sha256_file(source / "tokenizer.json")}
        if mixture is not None:
            m.mixture = Path(mixture)
            want = load_manifest(mixture).tokenizer.sha256
            if want != m.hashes["tokenizer_sha256"]:
                raise UserError("the export's tokenizer.json is not the tokenizer the mixture was built with (sha256 differs)",
                                file=source / "tokenizer.json", field="--mixture",
                                fix="pass the mixture this model was trained on, or export the model again from its run")
        return m
    if source.suffix == ".gguf":
        raise UserError("GGUF files are not evaluated yet", file=source, fix="evaluate the run folder or its HF export (titan export --to hf)")
    from datakit_titan.export.checkpoint import resolve
    from datakit_titan.export.hf import export_hf

    t = resolve(source, phase_file=phase, step=step, tokenizer=tokenizer)  # checks the tokenizer against the mixture's sha256
    run = Path(t.phase.phase.output)
    hf_dir = run / "eval" / f"hf-step-{t.step}"
    ckpt_sha = checkpoint_sha256(t.checkpoint)
    stamp = hf_dir / "checkpoint.sha256"
    if not (stamp.is_file() and stamp.read_text().strip() == ckpt_sha):
        export_hf(t, hf_dir, dtype="float32", force=True)
        stamp.write_text(ckpt_sha + "\n")
    m = load_hf(hf_dir, device)
    m.step, m.run, m.mixture = t.step, run, Path(t.phase.phase.mixture)
    m.hashes = {"checkpoint": str(t.checkpoint), "checkpoint_sha256": ckpt_sha, "tokenizer_sha256": t.manifest.tokenizer.sha256,
                "mixture_spec_sha256": t.manifest.spec_sha256, "phase": str(t.phase.path)}
    return m


def _files_sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(sha256_file(p).encode())
    return h.hexdigest()
