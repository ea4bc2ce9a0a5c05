"""Megatron-LM's indexed dataset (.bin + .idx), written by datatrove's MegatronTokenizedFile: one document per
sequence; dtype code 8 (uint16) for 2-byte mixtures, 4 (int32) for 4-byte ones."""

from __future__ import annotations

from pathlib import Path

from datatrove.pipeline.tokens.megatron_tokenizer import MegatronTokenizedFile

from datakit.contract.reader import Mixture


def write_megatron(mix: Mixture, out: Path) -> list[Path]:
    size = mix.manifest.tokenizer.token_size_bytes
    written, blend = [], []
    for src in mix.sources:
        if not src.n_docs:
            continue
        f = MegatronTokenizedFile(str(out), src.name, token_size=size)
        for d in src.documents():
            f.write(d.tokens)
        f.close()
        written += [out / f"{src.name}.bin", out / f"{src.name}.idx"]
        blend.append(f"{src.weight:.6f} {out / src.name}")
    (out / "blend.txt").write_text(" ".join(blend) + "\n")  # Megatron's --data-path: weight prefix weight prefix ...
    return written + [out / "blend.txt"]
