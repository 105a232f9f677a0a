"""The sentence-transformers backend with the real bundled MiniLM."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from densekit.encode import load_encoder, resolve_model
from densekit.errors import InputError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    return load_encoder("minilm")


def test_vectors_are_normalised_384_d_and_rank_sensibly(minilm) -> None:
    docs = minilm.encode_documents(["A cat sat on the mat.", "Stock markets fell sharply today."])
    query = minilm.encode_queries(["kitten on a rug"])
    assert docs.shape == (2, 384) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    scores = (query @ docs.T)[0]
    assert scores[0] > scores[1]


def test_fingerprint_identifies_weights_not_paths(minilm, tmp_path: Path) -> None:
    copy = tmp_path / "minilm-copy"
    shutil.copytree(resolve_model("minilm").location, copy)
    assert load_encoder(str(copy)).fingerprint == minilm.fingerprint
    prompted = load_encoder(replace(resolve_model("minilm"), query_prompt="query: "))
    assert prompted.fingerprint != minilm.fingerprint
    assert not np.allclose(prompted.encode_queries(["x"]), minilm.encode_queries(["x"]))


def test_token_spans_slice_the_original_text(minilm) -> None:
    text = "Dense retrieval, explained."
    spans = minilm.token_spans(text)
    assert [text[a:b] for a, b in spans][:2] == ["Dense", "retrieval"]
    assert minilm.max_tokens == 256
    assert minilm.document_tokens == 254  # [CLS] and [SEP] take two


def test_unloadable_model_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputError, match="could not load model"):
        load_encoder(str(tmp_path))


def test_token_budget_encoding_matches_sentence_transformers(minilm) -> None:
    texts = [("word " * n).strip() + f" number {n}" for n in (1, 3, 40, 7, 300, 90, 2, 500)]
    reference = minilm.model.encode(texts, batch_size=32, normalize_embeddings=True)
    ours = minilm.encode_documents(texts)
    np.testing.assert_array_equal(ours.shape, reference.shape)
    assert float((ours * reference).sum(axis=1).min()) > 0.9999
    assert minilm.token_lengths(["a b c"]) == [5]  # [CLS] a b c [SEP]


def test_given_token_lengths_spare_a_tokenization_and_change_nothing(minilm, monkeypatch) -> None:
    texts = [("word " * n).strip() for n in (3, 400, 12, 60)]
    lengths = minilm.token_lengths(texts)
    expected = minilm.encode_documents(texts)

    def no_second_pass(_texts):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(minilm, "token_lengths", no_second_pass)
    np.testing.assert_allclose(
        minilm.encode_documents(texts, token_lengths=lengths), expected, atol=1e-6
    )
