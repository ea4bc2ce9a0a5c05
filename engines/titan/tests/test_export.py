"""`titan export` / `generate` / `quant-report`, the user's story on CPU: a small model trained here with
`titan run` on a mixture tokenized by datakit's BPE tokenizer is exported to a transformers folder and to
GGUF files, and the same texts go through TorchTitan, transformers and llama.cpp's C++ code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from export_fixture import make_trained, phase_text

from datakit.errors import UserError
from datakit_titan.export.checkpoint import load_model, resolve

pytestmark = pytest.mark.slow
QUANTS = ["f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return make_trained(tmp_path_factory.mktemp("export"), steps=40)


@pytest.fixture(scope="module")
def titan(trained):
    t = resolve(trained["output"])
    return t, load_model(t)


@pytest.fixture(scope="module")
def gguf_dir(trained, titan):
    from datakit_titan.export.gguf import export_gguf

    t, model = titan
    out = trained["root"] / "exports" / "gguf"
    export_gguf(t, out, QUANTS, model=model)
    return out


def test_hf_export_loads_in_transformers_and_matches_torchtitan(trained, titan):
    from datakit_titan.export.hf import export_hf
    from datakit_titan.export.verify import check_hf

    t, model = titan
    out = export_hf(t, trained["root"] / "exports" / "hf", dtype="float32", model=model)
    cfg = json.loads((out / "config.json").read_text())
    p = t.preset
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["hidden_size"] == p.dim and cfg["num_hidden_layers"] == p.n_layers
    assert cfg["num_key_value_heads"] == p.n_kv_heads and cfg["intermediate_size"] == p.ffn_hidden and cfg["rms_norm_eps"] == p.norm_eps
    assert cfg["rope_theta"] == 10_000.0 and cfg["tie_word_embeddings"] is True and cfg["max_position_embeddings"] == 256
    assert (cfg["bos_token_id"], cfg["eos_token_id"], cfg["pad_token_id"]) == (1, 2, 0)
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["bos_token_id"] == 1 and gen["eos_token_id"][0] == 2 and len(gen["eos_token_id"]) == 2  # </s> and </answer>
    card = (out / "README.md").read_text()
    assert "export-train" in card and t.manifest.spec_sha256[:16] in card and "step 40" in card and "planning" in card
    r = check_hf(t, model, out)
    print(f"\nHF (fp32) vs TorchTitan: max |logit diff| {r['max_abs_logit_diff']:.3g}")
    assert r["tokenization_equal"] and r["max_abs_logit_diff"] < 1e-4
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("<problem>x</problem><thinking>y</thinking><answer>z</answer>").input_ids
    assert ids[0] == 1 and tok.convert_tokens_to_ids("<answer>") in ids and tok.decode(ids, skip_special_tokens=False).startswith("<s><problem>")


def test_gguf_f16_in_llama_cpp_matches_torchtitan(trained, titan, gguf_dir):
    from datakit_titan.export.verify import check_gguf

    t, model = titan
    r = check_gguf(t, model, gguf_dir / "model-f16.gguf")
    print(f"\nGGUF f16 (llama.cpp) vs TorchTitan: max |logit diff| {r['max_abs_logit_diff']:.3g}")
    assert r["tokenization_equal"], "our tokenizer.json, HF and llama.cpp disagree on the mixed corpus"
    assert r["max_abs_logit_diff"] < 0.05 and r["greedy_equal"]


def test_tokenization_identical_on_mixed_corpus(trained, titan, gguf_dir):
    """Prose, Python and planning documents: tokenizer.json (HF tokenizers), AutoTokenizer of the HF export
    and llama.cpp's tokenizer of the GGUF give the same ids, BOS included."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from datakit_titan.export.generate import open_gguf, tokenize
    from datakit_titan.export.hf import export_hf

    t, model = titan
    hf = export_hf(t, trained["root"] / "exports" / "hf-tok", model=model)
    ours, auto = Tokenizer.from_file(str(trained["tokenizer"])), AutoTokenizer.from_pretrained(hf)
    llm = open_gguf(gguf_dir / "model-f16.gguf")
    try:
        n = 0
        for source, docs in trained["docs"].items():
            for doc in docs[::5][:20]:
                ids = ours.encode(doc).ids
                assert ids[0] == 1 and auto(doc).input_ids == ids and tokenize(llm, doc) == ids, (source, doc[:80])
                n += len(ids)
    finally:
        llm.close()
    assert n > 20_000


def test_each_quant_is_llama_cpp_quantized_loads_and_generates(gguf_dir):
    import gguf

    from datakit_titan.export.generate import generate, open_gguf

    want = {"q8_0": "Q8_0", "q6_k": "Q6_K", "q5_k_m": "Q5_K", "q4_k_m": "Q4_K"}
    sizes = {}
    for q in QUANTS:
        path = gguf_dir / f"model-{q}.gguf"
        sizes[q] = path.stat().st_size
        types = {t.tensor_type.name for t in gguf.GGUFReader(path).tensors}
        assert want.get(q, "F16") in types, (q, types)
        llm = open_gguf(path)
        try:
            g = generate(llm, "<problem>Plan a route from Depot to Kelso.</problem>", max_tokens=8)
        finally:
            llm.close()
        assert 1 <= len(g.tokens) <= 8 or g.stop == "eos"
    assert sizes["f16"] > sizes["q8_0"] > sizes["q6_k"] > sizes["q5_k_m"] > sizes["q4_k_m"]
    assert "model-q4_k_m.gguf" in (gguf_dir / "README.md").read_text()


def test_phase3_rope_is_carried_to_hf_and_gguf(trained, tmp_path):
    """A phase-3 checkpoint runs with the phase's RoPE (theta 40,000 + llama scaling): config.json and the
    GGUF carry it, and both match TorchTitan's forward with that RoPE."""
    from datakit_titan.export.gguf import export_gguf
    from datakit_titan.export.hf import export_hf
    from datakit_titan.export.verify import check_gguf, check_hf

    out = tmp_path / "p3"
    shutil.copytree(trained["output"] / "checkpoint", out / "checkpoint")
    phase = tmp_path / "p3.toml"
    phase.write_text(phase_text("sft", trained["mixture"], out, extra="[rope]\ntheta = 40_000.0\nscaling = \"llama\"\nfactor = 4.0\n"
                                "original_seq_len = 64\n").replace('seed = 11', 'seed = 11\nloss = "sft"'))
    t = resolve(out, phase_file=phase)
    assert t.rope["theta"] == 40_000.0
    model = load_model(t)
    hf = export_hf(t, tmp_path / "hf", dtype="float32", model=model)
    cfg = json.loads((hf / "config.json").read_text())
    assert cfg["rope_theta"] == 40_000.0 and cfg["rope_scaling"]["rope_type"] == "llama3" and cfg["rope_scaling"]["factor"] == 4.0
    r = check_hf(t, model, hf)
    assert r["max_abs_logit_diff"] < 1e-4
    export_gguf(t, tmp_path / "gguf", ["f16"], model=model)
    g = check_gguf(t, model, tmp_path / "gguf" / "model-f16.gguf", greedy_tokens=4)
    print(f"\nphase 3 (theta 40k, llama x4): HF {r['max_abs_logit_diff']:.3g}, GGUF f16 {g['max_abs_logit_diff']:.3g}")
    assert g["max_abs_logit_diff"] < 0.05 and g["greedy_equal"]
    t10k = resolve(trained["output"])
    assert float(check_hf(t10k, load_model(t10k), hf)["max_abs_logit_diff"]) > 1e-3  # the RoPE change is visible


def test_quant_report_table_and_files(trained, gguf_dir):
    from datakit_titan.export.report import measure, write_report

    rep = measure(gguf_dir, trained["heldout"], n_tokens=1024, ctx=128, progress=False, gen_tokens=8)
    assert [r["quant"] for r in rep["rows"]] == QUANTS and rep["reference"] == "f16" and not rep["seen_in_training"]
    for r in rep["rows"]:
        assert r["ppl"] > 1 and r["mean_kl"] >= 0 and r["prompt_tps"] > 0 and r["bits_per_weight"] > 4
    assert rep["rows"][0]["ppl_ratio"] == 1.0 and rep["rows"][-1]["mean_kl"] > 0
    md = write_report(rep, gguf_dir).read_text()
    assert "| q4_k_m |" in md and "+0.175" in md and (gguf_dir / "quant_report.png").stat().st_size > 1000
    assert measure(gguf_dir, trained["mixture"], n_tokens=256, ctx=128, progress=False, gen_tokens=2)["seen_in_training"]


# -- bad input: a clear error, nothing that looks like a finished export ---------------------------------

def _no_export(out: Path) -> None:
    assert not out.exists() and not (out.parent / f".{out.name}.partial").exists()


def test_folder_without_checkpoint(trained, tmp_path):
    (tmp_path / "run").mkdir()
    shutil.copy(trained["output"] / "phase.toml", tmp_path / "run" / "phase.toml")
    with pytest.raises(UserError, match="no checkpoint"):
        resolve(tmp_path / "run")
    with pytest.raises(UserError, match="--phase"):
        resolve(tmp_path)  # no phase.toml: the fix names --phase


def test_step_that_does_not_exist_and_unknown_quant(trained, tmp_path):
    with pytest.raises(UserError, match=r"no checkpoint at step 7.*use one of \[20, 40\]"):
        resolve(trained["output"], step=7)
    out = tmp_path / "g"
    r = subprocess.run([sys.executable, "-m", "datakit_titan.cli", "export", str(trained["output"]), "--to", "gguf", "--quant", "f16,q4_k_x",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: --quant: unknown quant type 'q4_k_x'") and "Traceback" not in r.stderr
    _no_export(out)


def test_checkpoint_of_another_preset(trained, tmp_path):
    phase = tmp_path / "tiny.toml"
    phase.write_text(phase_text("pretrain", trained["mixture"], trained["output"], model="tiny"))
    with pytest.raises(UserError, match=r"does not hold the 'tiny' model.*phase.model|phase.model.*does not hold the 'tiny' model"):
        resolve(trained["output"], phase_file=phase)


def test_interrupted_export_leaves_nothing_complete_looking(trained, titan, tmp_path, monkeypatch):
    import datakit_titan.export.gguf as g

    t, model = titan

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(g, "quantize", boom)
    out = tmp_path / "gguf"
    with pytest.raises(KeyboardInterrupt):
        g.export_gguf(t, out, ["f16", "q4_k_m"], model=model)
    _no_export(out)
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(UserError, match="--force"):
        g.export_gguf(t, out, ["f16"], model=model)
    assert (out / "keep.txt").exists()


def test_quant_report_checks_the_mixture(trained, gguf_dir, tmp_path):
    from datakit_titan.export.report import measure

    bad = tmp_path / "heldout"
    shutil.copytree(trained["heldout"], bad)
    shard = next((bad / "tokens").rglob("*.ds"))
    data = bytearray(shard.read_bytes())
    data[10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256"):
        measure(gguf_dir, bad, n_tokens=256, ctx=128, progress=False)


def test_titan_generate_command(gguf_dir, tmp_path):
    prompt = "<problem>Plan a route from Depot to Kelso.</problem>"
    r = subprocess.run([sys.executable, "-m", "datakit_titan.cli", "generate", str(gguf_dir / "model-q4_k_m.gguf"), prompt, "--max-tokens", "6"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith(prompt) and "stop: " in r.stdout and "generation" in r.stdout and "tok/s; llama.cpp, model-q4_k_m.gguf]" in r.stdout
    r = subprocess.run([sys.executable, "-m", "datakit_titan.cli", "generate", str(tmp_path / "nope.gguf"), prompt], capture_output=True, text=True)
    assert r.returncode == 2 and "GGUF file does not exist" in r.stderr and "Traceback" not in r.stderr
