"""The static backend with the bundled tokenlearn-static-model weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from required import require

from densekit.encode import load_encoder
from densekit.encode.registry import ModelSpec
from densekit.errors import InputError
from densekit.retrieve import build_collection
from densekit.store import BuildOptions

require("static_model")


def test_static_vectors_are_64_d_normalised_and_deterministic() -> None:
    encoder = load_encoder("static")
    vectors = encoder.encode_documents(["the cat sat on the mat", "stock markets fell"])
    assert vectors.shape == (2, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(
        vectors,
        load_encoder("static").encode_documents(["the cat sat on the mat", "stock markets fell"]),
    )
    assert encoder.fingerprint == load_encoder("static").fingerprint
    text = "static embeddings"
    spans = encoder.token_spans(text)
    assert spans and all(0 <= a < b <= len(text) for a, b in spans)
    assert [a for a, _ in spans] == sorted(a for a, _ in spans)


def test_a_static_collection_is_searchable(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    docs = ["cats purr on warm mats", "the stock market fell sharply", "rivers flow to the sea"]
    corpus.write_text(
        "".join(json.dumps({"_id": str(i), "text": t}) + "\n" for i, t in enumerate(docs))
    )
    options = BuildOptions(model="static", retriever="dense", cache_dir=None, progress=False)
    collection = build_collection(corpus, tmp_path / "c", options)
    assert collection.info()["model"]["dimension"] == 64
    assert collection.search("market crash", k=1)[0].id == "1"


def test_unknown_backends_and_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown encoder backend 'tensorrt'"):
        load_encoder(ModelSpec(name="x", location="x", backend="tensorrt"))
    with pytest.raises(InputError, match="not a static model folder"):
        load_encoder(ModelSpec(name="x", location=str(tmp_path), backend="static"))
