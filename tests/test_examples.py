"""Phase-3 data: SFT and DPO examples with long context, loss masks and aligned pairs (Contract 2 layouts)."""

import json

import duckdb
import numpy as np
import pytest
from tokenizers import Tokenizer

from datakit.errors import UserError
from datakit.mix.build import build_mixture
from datakit.contract import read_shard
from datakit.spec import load_spec

SEQ = 384


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def records(n=30):
    sft, dpo = [], []
    for i in range(n):
        prompt = f"<problem>Schedule {i + 3} tasks A..; task A takes {i + 2} days, B needs A and takes 3 days.</problem>"
        good = f"<thinking>1. A ends on day {i + 2}. 2. B starts on day {i + 2} and ends on day {i + 5}.</thinking><answer>{i + 5}</answer>"
        bad = f"<thinking>1. A ends on day {i + 2}. 2. B starts on day {i + 2} and ends on day {i + 6}.</thinking><answer>{i + 6}</answer>"
        sft.append({"id": f"s{i}", "prompt": prompt, "completion": good, "meta": {}})
        dpo.append({"id": f"d{i}", "prompt": prompt, "chosen": good, "rejected": bad, "meta": {"flaw": "arithmetic"}})
    return sft, dpo


def spec_file(tmp_path, tok, sft, dpo, context='context = { sources = ["fineweb-edu"] }'):
    write_jsonl(tmp_path / "sft" / "records" / "a.jsonl", sft)
    write_jsonl(tmp_path / "dpo" / "records" / "a.jsonl", dpo)
    p = tmp_path / "long.toml"
    p.write_text(f"""
[mixture]
name = "long"
seq_len = {SEQ}
tokenizer = "{tok}"
vocab_size = 4096
output = "{tmp_path / 'out'}"

[[source]]
name = "fineweb-edu"
uri = "samples://HuggingFaceTB__smollm-corpus/fineweb-edu-dedup/train-*.parquet"
format = "fineweb-edu"
tokens = 0                      # context only

[[source]]
name = "sft"
uri = "synth://{tmp_path / 'sft'}"
format = "sft"
tokens = "all"
{context}

[[source]]
name = "dpo"
uri = "synth://{tmp_path / 'dpo'}"
format = "dpo"
tokens = "all"
{context}
""")
    return p


@pytest.fixture(scope="module")
def built(tmp_path_factory, smoke_tokenizer):
    d = tmp_path_factory.mktemp("long")
    sft, dpo = records()
    spec = load_spec(spec_file(d, smoke_tokenizer, sft, dpo))
    return spec, build_mixture(spec, progress=False), sft, dpo, Tokenizer.from_file(str(smoke_tokenizer))


def docs_of(spec, m, name):
    out = []
    for sh in m.source(name).shards:
        tokens, ends, loss = read_shard(spec.output / sh.path)
        assert loss is not None and len(loss) == len(tokens)
        starts = np.concatenate([[0], ends[:-1]]).astype(int)
        out += [(np.asarray(tokens[a:b]), np.asarray(loss[a:b])) for a, b in zip(starts, ends.astype(int))]
    return out


def test_sft_loss_mask_covers_exactly_the_completion(built):
    spec, m, sft, _, tok = built
    docs = docs_of(spec, m, "sft")
    assert len(docs) == len(sft) and m.source("sft").layout == "sft"
    completions = {tuple(tok.encode(r["completion"], add_special_tokens=False).ids + [2]) for r in sft}
    for tokens, loss in docs:
        assert len(tokens) <= SEQ and tokens[0] == 1 and tokens[-1] == 2
        first = int(np.argmax(loss))
        assert loss[:first].sum() == 0 and loss[first:].all()  # one contiguous masked-in tail
        assert tuple(tokens[first:].tolist()) in completions
        assert len(tokens) > SEQ - 60  # long context filled the example


def test_dpo_pairs_share_identical_prefix_and_differ_after(built):
    spec, m, _, dpo, tok = built
    docs = docs_of(spec, m, "dpo")
    assert len(docs) == 2 * len(dpo) and m.source("dpo").layout == "dpo_pairs"
    for (ct, cl), (rt, rl) in zip(docs[0::2], docs[1::2]):
        pc, pr = int(np.argmax(cl)), int(np.argmax(rl))
        assert pc == pr and (ct[:pc] == rt[:pr]).all()  # same <s> + context + prompt tokens
        assert not np.array_equal(ct[pc:], rt[pr:])
        assert max(len(ct), len(rt)) <= SEQ


def test_accounting_splits_context_prompt_completion(built):
    spec, m, _, dpo, _ = built
    con = duckdb.connect(str(spec.output / "accounting.duckdb"), read_only=True)
    rows = con.execute(
        "select source, sum(tokens), sum(context_tokens + prompt_tokens + completion_tokens + 1 + 1) "  # + <s> + separator
        "from docs where source in ('sft', 'dpo') group by 1"
    ).fetchall()
    for source, tokens, parts in rows:
        assert tokens == parts
    roles = con.execute("select role, count(*) from docs where source = 'dpo' group by 1 order by 1").fetchall()
    assert roles == [("chosen", len(dpo)), ("rejected", len(dpo))]
    assert m.source("fineweb-edu").tokens_written == 0  # context-only source


def test_chosen_equal_rejected_is_refused(tmp_path, smoke_tokenizer):
    sft, dpo = records(3)
    dpo[1]["rejected"] = dpo[1]["chosen"] + "  "
    with pytest.raises(UserError, match="chosen and rejected are the same") as e:
        build_mixture(load_spec(spec_file(tmp_path, smoke_tokenizer, sft, dpo)), progress=False)
    assert "d1" in str(e.value)


def test_example_longer_than_seq_len_is_refused(tmp_path, smoke_tokenizer):
    sft, dpo = records(3)
    sft[0]["completion"] = "word " * 2000
    with pytest.raises(UserError, match="longer than seq_len"):
        build_mixture(load_spec(spec_file(tmp_path, smoke_tokenizer, sft, dpo)), progress=False)


def test_procedural_sft_and_dpo_sets_build_into_a_long_context_mixture(tmp_path, smoke_tokenizer):
    """The phase-3 story: procedural records -> `synth sft` / `synth dpo` -> mixture with context."""
    from datakit.synth.dpo import make_dpo
    from datakit.synth.procedural import generate
    from datakit.synth.sft import make_sft

    generate(tmp_path / "proc", count=20, seed=3, difficulty="easy", progress=False)
    make_sft(tmp_path / "proc", tmp_path / "sft")
    make_dpo(tmp_path / "proc", tmp_path / "dpo")
    p = tmp_path / "p3.toml"
    p.write_text(
        spec_file(tmp_path / "unused", smoke_tokenizer, *records(2)).read_text()
        .replace(f"synth://{tmp_path / 'unused' / 'sft'}", f"synth://{tmp_path / 'sft'}")
        .replace(f"synth://{tmp_path / 'unused' / 'dpo'}", f"synth://{tmp_path / 'dpo'}")
        .replace(f"seq_len = {SEQ}", "seq_len = 1200")
    )
    spec = load_spec(p)
    m = build_mixture(spec, progress=False)
    assert m.source("sft").docs_written == 20
    docs = docs_of(spec, m, "dpo")
    assert len(docs) == 2 * m.source("dpo").docs_written // 2 > 0
    for (ct, cl), (rt, rl) in zip(docs[0::2], docs[1::2]):
        p_ = int(np.argmax(cl))
        assert p_ == int(np.argmax(rl)) and (ct[:p_] == rt[:p_]).all()


def test_rerun_after_the_synth_folder_grew_rebuilds_with_the_new_records(tmp_path, smoke_tokenizer):
    sft, dpo = records(6)
    p = spec_file(tmp_path, smoke_tokenizer, sft[:3], dpo[:3], context="")
    assert build_mixture(load_spec(p), progress=False).source("sft").docs_written == 3
    write_jsonl(tmp_path / "sft" / "records" / "b.jsonl", sft[3:])  # e.g. `datakit synth sft` appended more
    assert build_mixture(load_spec(p), progress=False).source("sft").docs_written == 6
    assert build_mixture(load_spec(p), progress=False).source("sft").docs_written == 6  # unchanged inputs: no-op


def test_targets_of_context_sources_count_rows_context_included(tmp_path, smoke_tokenizer):
    """The plan's "2B for SFT, 1B for DPO pairs" is a budget of [context, prompt, completion] rows: a target
    of 10 x seq_len tokens is 10 SFT examples, each filled with context to seq_len."""
    from datakit.mix.plan import make_plan

    sft, dpo = records(30)
    p = spec_file(tmp_path, smoke_tokenizer, sft, dpo)
    p.write_text(p.read_text().replace('format = "sft"\ntokens = "all"', f'format = "sft"\ntokens = {10 * SEQ}')
                 .replace('format = "dpo"\ntokens = "all"', f'format = "dpo"\ntokens = {4 * 2 * SEQ - 100}'))
    spec = load_spec(p)
    m = build_mixture(spec, progress=False)
    s, d = m.source("sft"), m.source("dpo")
    assert s.tokens_available == 30 * SEQ  # one pass of the 30 examples, as rows of SEQ
    assert (s.docs_written, s.tokens_written) == (10, 10 * SEQ) and s.epochs == pytest.approx(10 / 30)
    assert d.docs_written == 2 * 4 and 4 * 2 * SEQ - 100 <= d.tokens_written <= 4 * 2 * SEQ
    assert all(len(t) == SEQ for t, _ in docs_of(spec, m, "sft"))
    notes = make_plan(spec).notes
    assert f"sft: target {10 * SEQ:,} tokens = rows filled with context to {SEQ:,} tokens: {10 * SEQ:,} / {SEQ:,} = ~10 examples" in notes
    assert any(n.startswith("dpo: ") and "2 per pair" in n and "~4 pairs" in n for n in notes)
