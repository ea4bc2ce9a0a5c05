"""`datakit tokenizer ...`"""

from __future__ import annotations

from pathlib import Path

import typer

from datakit.spec import load_spec, parse_size
from datakit.spec.sizes import human

app = typer.Typer(no_args_is_help=True)


@app.command()
def train(
    spec_path: Path = typer.Argument(..., help="Mixture spec whose sources are sampled, e.g. mixtures/pretrain.toml."),
    vocab_size: int = typer.Option(None, "--vocab-size", help="Entries in the vocabulary (default: the spec's vocab_size, 65,536)."),
    sample_bytes: str = typer.Option(None, "--sample-bytes", help="Text to train on, e.g. 2G (default: the spec's [tokenizer_train] sample_bytes, 1G)."),
    out: Path = typer.Option(None, "--out", help="Where to write tokenizer.json (default: the spec's [mixture] tokenizer)."),
):
    """Train the byte-level BPE tokenizer on a deterministic sample of the spec's sources.

    Ids 0/1/2 are <pad>/<s>/</s>; the planning tags are special tokens; pre-tokenization is Llama 3's regex,
    so llama.cpp tokenizes a GGUF export identically. Example:

        datakit tokenizer train mixtures/pretrain.toml --vocab-size 65536
    """
    from datakit.mix.tokenizer_sample import spec_sample
    from datakit.tokenizer.train import train_tokenizer

    from datakit.mix.pipeline import quiet_datatrove

    quiet_datatrove()
    spec = load_spec(spec_path)
    vocab = vocab_size or spec.mixture.vocab_size
    budget = parse_size(sample_bytes) if sample_bytes else spec.tokenizer_train.sample_bytes
    target = out or Path(spec.mixture.tokenizer)
    stats: dict = {}
    result = train_tokenizer(spec_sample(spec, budget, stats), target, vocab, spec.tokenizer_train.min_frequency)
    used = ", ".join(f"{k} {human(v, 'B')}" for k, v in stats.items())
    typer.echo(f"wrote {result['path']} (vocab {result['vocab_size']:,}) from {human(sum(stats.values()), 'B')} of text: {used}")
