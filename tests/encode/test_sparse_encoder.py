"""The bundled SPLADE-tiny model: sparse vectors over the vocabulary, stable fingerprints."""

from __future__ import annotations

import pytest
from required import require

from densekit.encode import load_encoder
from densekit.errors import InputError

require("cognition")


def test_splade_tiny_expands_texts_into_vocabulary_weights() -> None:
    from densekit.encode.sparse import SparseTextEncoder

    encoder = SparseTextEncoder("splade-tiny")
    vectors = encoder.encode_documents(["Vitamin D keeps bones strong.", "Dogs love to run."])
    assert vectors.shape == (2, encoder.vocabulary) and encoder.vocabulary == 30522
    assert 0 < vectors[0].nnz < 500 and (vectors.data > 0).all()
    vocabulary = encoder.model.tokenizer.get_vocab()
    assert vectors[0, vocabulary["vitamin"]] > 0 and vectors[1, vocabulary["vitamin"]] == 0
    assert encoder.fingerprint == SparseTextEncoder("splade-tiny").fingerprint


def test_a_sparse_model_is_refused_as_a_dense_encoder() -> None:
    with pytest.raises(InputError, match="learned sparse model, not a dense encoder"):
        load_encoder("splade-tiny")


def test_huge_documents_are_cut_to_what_the_model_reads(monkeypatch) -> None:
    from densekit.encode.sparse import SparseTextEncoder

    encoder = SparseTextEncoder("splade-tiny", max_tokens=64)
    text = " ".join(f"vitamin bones {i}" for i in range(20_000))
    whole = encoder._encode([text], encoder.model.encode_document, False)  # tokenised in full
    given: list[int] = []
    encode_document = encoder.model.encode_document

    def recorded(texts, **options):
        given.extend(len(t) for t in texts)
        return encode_document(texts, **options)

    monkeypatch.setattr(encoder.model, "encode_document", recorded)
    cut = encoder.encode_documents([text])
    assert given and max(given) < len(text) // 50
    assert (cut != whole).nnz == 0
