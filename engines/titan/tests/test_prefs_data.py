"""Phase-3 rows from a real built mixture (datakit's builder, SFT + DPO + plain sources with long
context): what the dataset emits is checked against the shards; pairs stay whole in every batch, on
every rank; resume is exact; bad input is refused before training. Also the fixture other
test_prefs_* files import (`prefs_mixture`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from datakit.errors import UserError
from datakit.contract import load_manifest, read_shard
from datakit.adapters.losses import IGNORE_INDEX, ROLE_CHOSEN, ROLE_PAD, ROLE_REJECTED, ROLE_SFT
from datakit_titan.dataset import PairDataset

SEQ = 128  # the mixture's seq_len: every example (context + prompt + completion) fits in 128 tokens
SAMPLES = Path(__import__("datakit.samples", fromlist=["x"]).__file__).parent


def toy_records(n: int = 24):
    """Pairs a tiny model can learn to rank: the chosen completion says "checked", the rejected "guessed"."""
    sft, dpo = [], []
    for i in range(n):
        prompt = f"<problem>Task {i}: add {i} and {i + 3}.</problem>"
        good = f"<answer>{2 * i + 3}</answer> checked"
        bad = f"<answer>{2 * i + 4}</answer> guessed"
        sft.append({"id": f"s{i}", "prompt": prompt, "completion": good, "meta": {}})
        dpo.append({"id": f"d{i}", "prompt": prompt, "chosen": good, "rejected": bad, "meta": {"flaw": "arithmetic"}})
    return sft, dpo


def write_jsonl(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def train_small_tokenizer(out: Path) -> Path:
    import pyarrow.parquet as pq

    from datakit.tokenizer.train import train_tokenizer

    texts = []
    for sub in ("fineweb-edu-dedup", "cosmopedia-v2"):
        for f in sorted((SAMPLES / "HuggingFaceTB__smollm-corpus" / sub).glob("*.parquet")):
            texts += pq.read_table(f, columns=["text"]).column("text").to_pylist()
    sft, dpo = toy_records()
    texts += [r["prompt"] + r["chosen"] + r["rejected"] for r in dpo]
    train_tokenizer(texts, out, 4096)
    return out


def build_prefs_mixture(root: Path, *, n_pairs: int = 24, docs_tokens: int = 2000, name: str = "prefs") -> Path:
    """Build a phase-3 mixture with datakit's builder: `sft` and `dpo` sources with fineweb-edu context
    up to seq_len, plus a plain `docs` source (cosmopedia) mixed in for length."""
    from datakit.mix.build import build_mixture
    from datakit.spec import load_spec

    tok = root / "tok" / "tokenizer.json"
    if not tok.exists():
        train_small_tokenizer(tok)
    sft, dpo = toy_records(n_pairs)
    write_jsonl(root / name / "sft" / "records" / "a.jsonl", sft)
    write_jsonl(root / name / "dpo" / "records" / "a.jsonl", dpo)
    spec = root / f"{name}.toml"
    spec.write_text(f"""
[mixture]
name = "{name}"
seq_len = {SEQ}
tokenizer = "{tok}"
vocab_size = 4096
output = "{root / name / 'mix'}"
heldout_docs = 0  # the training tests' token budgets count every document

[[source]]
name = "context"
uri = "samples://HuggingFaceTB__smollm-corpus/fineweb-edu-dedup/train-*.parquet"
format = "fineweb-edu"
tokens = 0

[[source]]
name = "long-docs"
uri = "samples://HuggingFaceTB__smollm-corpus/cosmopedia-v2/train-*.parquet"
format = "text"
tokens = {docs_tokens}

[[source]]
name = "sft"
uri = "synth://{root / name / 'sft'}"
format = "sft"
tokens = "all"
context = {{ sources = ["context"], max_tokens = 48 }}

[[source]]
name = "dpo"
uri = "synth://{root / name / 'dpo'}"
format = "dpo"
tokens = "all"
context = {{ sources = ["context"], max_tokens = 48 }}
""")
    build_mixture(load_spec(spec), progress=False)
    return root / name / "mix"


@pytest.fixture(scope="session")
def prefs_mixture(tmp_path_factory) -> Path:
    """A built phase-3 mixture (read-only: tests that write into it copy it first)."""
    return build_prefs_mixture(tmp_path_factory.mktemp("prefs"))


def copy_mixture(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".work"))
    return dst


def source_docs(folder: Path, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    m = load_manifest(folder)
    out = []
    for sh in m.source(name).shards:
        tokens, ends, loss = read_shard(folder / sh.path)
        starts = np.concatenate([[0], ends[:-1]]).astype(int)
        out += [(np.asarray(tokens[a:b]), np.asarray(loss[a:b]) if loss is not None else np.ones(b - a, np.uint8))
                for a, b in zip(starts, ends.astype(int))]
    return out


def batches(ds, n_rows: int, batch_rows: int):
    rows = []
    for i, (x, y) in enumerate(ds):
        rows.append((x, y))
        if i + 1 >= n_rows:
            break
    return [rows[i : i + batch_rows] for i in range(0, len(rows), batch_rows)]


def test_rows_are_the_shards_examples_with_completion_labels_only(prefs_mixture):
    m = load_manifest(prefs_mixture)
    assert {s.name: getattr(s, "layout", "docs") for s in m.sources if s.shards} == {"long-docs": "docs", "sft": "sft", "dpo": "dpo_pairs"}
    ds = PairDataset(prefs_mixture, seq_len=SEQ, batch_rows=4, loss="orpo", infinite=False)  # orpo: pairs, no reference needed
    examples = {"sft": source_docs(prefs_mixture, "sft"), "dpo": source_docs(prefs_mixture, "dpo")}
    seen = {"sft": 0, "dpo": 0, "long-docs": 0}
    for x, y in ds:
        inp, pos, role = x["input"].numpy(), x["positions"].numpy(), int(x["role"])
        y = y.numpy()
        n = int(np.argmax(pos[1:] == 0) + 1) if (pos[1:] == 0).any() else SEQ  # example length, then padding
        assert (pos[:n] == np.arange(n)).all() and (inp[n:] == 0).all() and (y[n:] == IGNORE_INDEX).all()
        if role in (ROLE_CHOSEN, ROLE_REJECTED):
            pair = int(x["pair_id"]) & 0xFFFFFFFF
            tokens, loss = examples["dpo"][2 * pair + (role == ROLE_REJECTED)]
            seen["dpo"] += 1
        else:
            assert role == ROLE_SFT and int(x["pair_id"]) == -1
            match = [(t, lm) for t, lm in examples["sft"] if len(t) - 1 == n and (t[:-1] == inp[:n]).all()]
            if not match:  # a row of a plain document: every token is a target
                assert (y[:n] != IGNORE_INDEX).all() and (y[: n - 1] == inp[1:n]).all()
                seen["long-docs"] += 1
                continue
            tokens, loss = match[0]
            seen["sft"] += 1
        assert (inp[:n] == tokens[:-1]).all() and n == len(tokens) - 1
        targets = y[:n] != IGNORE_INDEX
        assert (targets == (loss[1:] == 1)).all()  # exactly the completion + </s>
        assert (y[:n][targets] == tokens[1:][loss[1:] == 1]).all() and tokens[-1] == 2
    assert seen["dpo"] == len(examples["dpo"]) and seen["sft"] == len(examples["sft"]) and seen["long-docs"] > 0


def test_batches_hold_whole_pairs_on_every_rank_and_ranks_split_pairs(prefs_mixture):
    all_pairs = []
    for rank in range(2):
        for B in (2, 3, 4):
            ds = PairDataset(prefs_mixture, seq_len=SEQ, batch_rows=B, dp_rank=rank, dp_world_size=2, loss="orpo", infinite=False)
            rows = list(ds)
            for b in range(0, len(rows), B):
                roles = [int(x["role"]) for x, _ in rows[b : b + B]]
                ids = [int(x["pair_id"]) for x, _ in rows[b : b + B]]
                for i, r in enumerate(roles):
                    if r == ROLE_CHOSEN:
                        assert roles[i + 1] == ROLE_REJECTED and ids[i + 1] == ids[i]
                    if r == ROLE_REJECTED:
                        assert i > 0 and roles[i - 1] == ROLE_CHOSEN
            if B == 4:
                all_pairs.append({int(x["pair_id"]) for x, _ in rows if int(x["role"]) == ROLE_CHOSEN})
    assert not (all_pairs[0] & all_pairs[1])  # no pair on both ranks
    assert len(all_pairs[0] | all_pairs[1]) == len(source_docs(prefs_mixture, "dpo")) // 2


def test_sft_loss_reads_the_chosen_half_only(prefs_mixture):
    rows = list(PairDataset(prefs_mixture, seq_len=SEQ, batch_rows=1, loss="sft", infinite=False))
    assert {int(x["role"]) for x, _ in rows} == {ROLE_SFT}
    dpo = source_docs(prefs_mixture, "dpo")
    chosen = [tuple(t[:-1]) for t, _ in dpo[0::2]]
    rejected = [tuple(t[:-1]) for t, _ in dpo[1::2]]
    firsts = {tuple(x["input"].numpy()) for x, _ in rows}
    padded = lambda t: tuple(t) + (0,) * (SEQ - len(t))  # noqa: E731
    assert all(padded(c) in firsts for c in chosen) and not any(padded(r) in firsts for r in rejected)


def test_resume_is_exact_mid_pair_and_mid_epoch(prefs_mixture):
    kw = dict(seq_len=SEQ, batch_rows=3, loss="orpo")
    straight = PairDataset(prefs_mixture, **kw)
    it = iter(straight)
    ref = [next(it) for _ in range(150)]  # > one epoch
    for k in (7, 50, 101):  # odd k: stop between a chosen and its rejected row
        first = PairDataset(prefs_mixture, **kw)
        it = iter(first)
        for _ in range(k):
            next(it)
        state = json.loads(json.dumps(first.state_dict()))
        resumed = PairDataset(prefs_mixture, **kw)
        resumed.load_state_dict(state)
        it = iter(resumed)
        for j in range(k, 150):
            x, y = next(it)
            ex, ey = ref[j]
            assert torch.equal(y, ey) and all(torch.equal(x[key], ex[key]) for key in x), (k, j)


def test_padding_row_fills_the_last_slot_when_only_pairs_are_left(prefs_mixture):
    ds = PairDataset(prefs_mixture, seq_len=SEQ, batch_rows=3, loss="orpo", infinite=False)
    rows = list(ds)
    pads = [x for x, _ in rows if int(x["role"]) == ROLE_PAD]
    for x in pads:
        assert int(x["pair_id"]) == -1
    assert all((y == IGNORE_INDEX).all() for x, y in rows if int(x["role"]) == ROLE_PAD)


def test_bad_input_is_refused_before_training(prefs_mixture, tmp_path):
    with pytest.raises(UserError, match="longer than seq_len") as e:
        PairDataset(prefs_mixture, seq_len=SEQ // 2, batch_rows=4, loss="orpo")
    assert e.value.field == "stage.seq_len"
    with pytest.raises(UserError, match="cannot hold a chosen"):
        PairDataset(prefs_mixture, seq_len=SEQ, batch_rows=1, loss="dpo")
    with pytest.raises(UserError, match="no reference log-probs") as e:
        PairDataset(prefs_mixture, seq_len=SEQ, batch_rows=4, loss="sft_dpo", phase_file="p3.toml")
    assert "titan refscore p3.toml" in str(e.value)
