"""Encoding with the first layers and dimensions (2D Matryoshka), end to end on MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from required import require

from densekit.encode import load_encoder
from densekit.errors import InputError
from densekit.retrieve import build_collection, open_collection
from densekit.store import BuildOptions

TEXTS = ["Vitamin D supplements raise bone density.", "Dogs are loyal companions."]


@pytest.fixture(scope="module")
def full():
    return load_encoder("minilm")


def test_dim_keeps_the_first_dimensions_renormalised(full) -> None:
    cut = load_encoder("minilm", dim=128)
    assert cut.dimension == 128
    expected = full.encode_documents(TEXTS)[:, :128]
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(cut.encode_documents(TEXTS), expected, atol=1e-5)
    assert cut.fingerprint != full.fingerprint


def test_layers_run_a_shallower_model(full) -> None:
    shallow = load_encoder("minilm", layers=2)
    assert shallow.dimension == full.dimension
    vectors = shallow.encode_documents(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors, full.encode_documents(TEXTS), atol=1e-3)
    assert shallow.fingerprint != load_encoder("minilm", layers=3).fingerprint
    every = load_encoder("minilm", layers=6)  # all six layers: the same vectors
    np.testing.assert_allclose(every.encode_documents(TEXTS), full.encode_documents(TEXTS))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layers": 7}, "--layers must be 1 to 6"),
        ({"dim": 500}, "--dim must be 1 to 384"),
    ],
)
def test_cuts_beyond_the_model_are_refused(options: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_encoder("minilm", **options)


def test_other_backends_refuse_cuts() -> None:
    require("static_model")
    with pytest.raises(InputError, match="work with the sentence-transformers backend"):
        load_encoder("static", layers=1)


def test_a_collection_encodes_queries_with_its_own_cut(corpus_file: Path, tmp_path: Path) -> None:
    options = BuildOptions(retriever="dense", layers=3, dim=64, progress=False, cache_dir=None)
    build_collection(corpus_file, tmp_path / "c", options)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert (manifest["encoder"]["layers"], manifest["encoder"]["dim"]) == (3, 64)
    reopened = open_collection(tmp_path / "c")
    assert reopened.encoder.dimension == 64
    assert reopened.search("loyal dogs", 1)
