"""Decoder LLMs as encoders: bidirectional attention per family, pooling, options, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from tiny_llms import FAMILIES, tiny_model

from densekit.encode import load_encoder
from densekit.encode.decoder import (
    DecoderEncoder,
    check_bidirectional,
    decoder_spec,
    full_attention_mask,
    pool_all,
)
from densekit.errors import InputError
from densekit.retrieve import build_collection, open_collection
from densekit.store import BuildOptions


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("decoders")
    return {family: tiny_model(root / family, family) for family in FAMILIES}


def encoder(path: Path, **options: object) -> DecoderEncoder:
    fragment = "&".join(f"{k}={v}" for k, v in options.items())
    found = load_encoder(f"llm:{path}#{fragment}" if fragment else f"llm:{path}")
    assert isinstance(found, DecoderEncoder)
    return found


@pytest.mark.parametrize("family", list(FAMILIES))
def test_bidirectional_attention_reaches_the_first_token_in_every_family(models, family):
    texts = ["the cat sat on the mat", "fish swim"]
    full, causal = encoder(models[family]), encoder(models[family], attention="causal")
    full_states, mask = full.hidden_states(texts)
    causal_states, _ = causal.hidden_states(texts)
    # Under causal attention the first token sees only itself, so its state is the same
    # whatever follows; with full attention it sees the whole text.
    alone, _ = causal.hidden_states(["the"])
    torch.testing.assert_close(causal_states[0, 0], alone[0, 0], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(full_states[0, 0], causal_states[0, 0], atol=1e-4)
    # Padding changes nothing: the short text alone equals the short text in a batch.
    for model in (full, causal):
        together = model.encode_documents(texts)[1]
        np.testing.assert_allclose(together, model.encode_documents(["fish swim"])[0], atol=1e-5)
    lengths = full.token_lengths(texts)
    assert mask.sum(dim=1).tolist() == lengths and lengths[1] < lengths[0]


def test_pooling_mean_last_and_position_weighted():
    states = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]], [[2.0, 4.0], [0.0, 0.0], [5, 5]]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    pooled = pool_all(states, mask)
    np.testing.assert_allclose(pooled["mean"], [[2.0, 1.0], [2.0, 4.0]])
    np.testing.assert_allclose(pooled["last"], [[3.0, 2.0], [2.0, 4.0]])
    np.testing.assert_allclose(pooled["weighted-mean"], [[(1 + 6) / 3, 4 / 3], [2.0, 4.0]])


def test_the_full_mask_lets_real_tokens_see_each_other_and_hides_padding():
    mask = full_attention_mask(torch.tensor([[1, 1, 0]]), torch.float32)
    assert mask.shape == (1, 1, 3, 3)
    assert (mask[0, 0, :, :2] == 0).all() and (mask[0, 0, :, 2] < -1e30).all()


def test_options_live_in_the_location_and_change_the_fingerprint(models):
    spec = decoder_spec(f"llm:{models['llama']}#pooling=last&attention=causal")
    assert spec.backend == "decoder" and spec.name == f"llm:{models['llama']}"
    assert spec.location.endswith("#attention=causal&pooling=last&dtype=float32&max_tokens=512")
    assert spec.query_prompt.startswith("Instruct:")
    prints = {
        encoder(models["llama"], **options).fingerprint
        for options in ({}, {"pooling": "last"}, {"attention": "causal"}, {"max_tokens": 64})
    }
    assert len(prints) == 4
    last = encoder(models["llama"], pooling="last")
    states, _ = last.hidden_states(["the cat sat"])
    expected = states[0, 2] / states[0, 2].norm()
    np.testing.assert_allclose(last.encode_documents(["the cat sat"])[0], expected, atol=1e-5)


def test_a_collection_reopens_its_decoder_with_the_same_options(models, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    lines = [{"_id": f"d{i}", "text": t} for i, t in enumerate(["the cat sat", "fish swim rivers"])]
    corpus.write_text("".join(json.dumps(line) + "\n" for line in lines))
    model = f"llm:{models['qwen2']}#pooling=weighted-mean&max_tokens=128"
    options = BuildOptions(model=model, retriever="dense", progress=False, cache_dir=None)
    built = build_collection(corpus, tmp_path / "c", options)
    fingerprint = built.manifest.encoder.fingerprint
    built.close()
    with open_collection(tmp_path / "c") as collection:
        assert collection.manifest.encoder.location.endswith(
            "pooling=weighted-mean&dtype=float32&max_tokens=128"
        )
        assert collection.encoder.fingerprint == fingerprint
        assert len(collection.search("fish swim", k=2)) == 2


def test_refusals_name_what_is_wrong(models, tmp_path):
    bert = tmp_path / "bert"
    config = transformers.BertConfig(
        vocab_size=20,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    transformers.BertModel(config).save_pretrained(str(bert))
    with pytest.raises(InputError, match="not a causal LM"):
        load_encoder(f"llm:{bert}")
    with pytest.raises(InputError, match="unknown option 'poolling'"):
        load_encoder(f"llm:{models['llama']}#poolling=mean")
    with pytest.raises(InputError, match="pooling must be one of"):
        load_encoder(f"llm:{models['llama']}#pooling=max")
    with pytest.raises(InputError, match="no model"):
        load_encoder("llm:")
    long_prompt = decoder_spec(f"llm:{models['llama']}#max_tokens=8", query_prompt="the " * 20)
    with pytest.raises(InputError, match=r"query prompt takes \d+ tokens"):
        DecoderEncoder(long_prompt)


def test_a_family_that_ignores_custom_masks_is_refused_by_name():
    class IgnoresMasks(torch.nn.Module):
        dtype = torch.float32

        def forward(self, input_ids, attention_mask):
            states = torch.cumsum(torch.ones(*input_ids.shape, 4), dim=1)  # causal-looking
            return type("Output", (), {"last_hidden_state": states})()

    with pytest.raises(InputError, match="model type 'oddformer' ignores a custom attention"):
        check_bidirectional(IgnoresMasks(), "oddformer")


@pytest.mark.usefixtures("bundled_smollm2")
@pytest.mark.slow
def test_bundled_smollm2_attends_bidirectionally():
    full = load_encoder("llm:smollm2#max_tokens=64")
    causal = load_encoder("llm:smollm2#attention=causal&max_tokens=64")
    text = ["Vitamin D deficiency raises the risk of bone fractures."]
    assert not torch.allclose(
        full.hidden_states(text)[0][0, 0], causal.hidden_states(text)[0][0, 0]
    )
    vectors = full.encode_documents([*text, "Salmon swim upstream to spawn."])
    assert vectors.shape == (2, 576) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    # Queries carry the instruction: the same text encodes differently as a query.
    as_query = full.encode_queries(text)
    assert not np.allclose(as_query[0], vectors[0], atol=1e-3)
