"""ColBERT-style token encoding: markers, query augmentation, kept tokens, save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from densekit.encode.late_interaction import LateInteractionEncoder, LateInteractionSettings
from densekit.encode.registry import resolve_model


@pytest.fixture(scope="module")
def encoder() -> LateInteractionEncoder:
    settings = LateInteractionSettings(dimension=48, query_tokens=16, document_tokens=24)
    return LateInteractionEncoder(resolve_model("minilm").location, settings)


def test_queries_are_padded_with_masks_to_a_fixed_length(encoder) -> None:
    short, longer = encoder.encode_queries(["vitamin d", "does vitamin d help bones " * 5])
    assert short.shape == longer.shape == (16, 48)
    assert np.allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-5)


def test_documents_keep_their_words_and_marker_not_punctuation(encoder) -> None:
    (vectors,) = encoder.encode_documents(["Bones, teeth; and muscles!"])
    words = encoder.tokenizer.tokenize("Bones, teeth; and muscles!")
    kept_words = [w for w in words if w not in {",", ";", "!"}]
    assert vectors.shape == (len(kept_words) + 1, 48)  # + the document marker
    (long,) = encoder.encode_documents(["word " * 100])
    assert len(long) == 24 - 2  # cut to 24 tokens, [CLS] and [SEP] not kept


def test_a_saved_encoder_loads_back_with_the_same_vectors(encoder, tmp_path: Path) -> None:
    encoder.save(tmp_path / "model")
    loaded = LateInteractionEncoder(str(tmp_path / "model"))
    assert loaded.settings == encoder.settings and loaded.fingerprint == encoder.fingerprint
    text = ["a document about calcium"]
    assert np.allclose(loaded.encode_documents(text)[0], encoder.encode_documents(text)[0])


def test_the_fingerprint_follows_the_settings(encoder) -> None:
    other = LateInteractionEncoder(
        encoder.location, LateInteractionSettings(dimension=48, query_tokens=8)
    )
    assert other.fingerprint != encoder.fingerprint
