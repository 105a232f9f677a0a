from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import unit_rows

from densekit.adapt import (
    AdapterSpec,
    AdapterTraining,
    load_adapter,
    save_adapter,
    train_adapter,
)
from densekit.errors import InputError


def mismatched_task(seed: int = 0):
    """Documents, and queries that point at their positive only after a fixed rotation the
    frozen space does not know: plain retrieval misses, an adapter can learn the map."""
    rng = np.random.default_rng(seed)
    dimension, documents = 16, 200
    corpus = unit_rows(documents, dimension, seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(dimension, dimension)))
    targets = rng.integers(0, documents, size=300)
    noise = 0.05 * rng.normal(size=(300, dimension))
    queries = (corpus[targets] + noise) @ rotation.astype(np.float32)
    pairs = [(i, int(t)) for i, t in enumerate(targets)]
    return queries.astype(np.float32), pairs, corpus


def top1(queries: np.ndarray, documents: np.ndarray, pairs) -> float:
    best = np.argmax(queries @ documents.T, axis=1)
    return float(np.mean([best[q] == d for q, d in pairs]))


@pytest.mark.parametrize(
    ("spec", "negatives"),
    [
        (AdapterSpec(form="low-rank", rank=16, sides="query"), None),
        (AdapterSpec(form="low-rank", rank=16, sides="query"), 50),
        (AdapterSpec(form="key-value", rank=64, sides="query"), None),
    ],
)
def test_training_learns_a_map_the_frozen_space_lacks(spec, negatives) -> None:
    queries, pairs, corpus = mismatched_task()
    train, held_out = pairs[:250], pairs[250:]
    before = top1(queries, corpus, held_out)
    training = AdapterTraining(epochs=60, batch=32, learning_rate=1e-2, negatives=negatives)
    adapter, report = train_adapter(queries, train, corpus, spec, training)
    after = top1(adapter.adapt_queries(queries), adapter.adapt_documents(corpus), held_out)
    assert report.loss_last_epoch < report.loss_first_epoch
    assert after > before + 0.3, (before, after)
    assert report.pairs == 250 and report.documents == 200


def test_other_positives_of_a_query_are_not_negatives() -> None:
    queries = unit_rows(1, 8)
    corpus = np.stack([queries[0], queries[0], -queries[0]])
    # Two identical positives: if each counted as the other's negative, the loss could not
    # fall below log 2; masked, it goes to ~0.
    _, report = train_adapter(
        queries, [(0, 0), (0, 1)], corpus, AdapterSpec(rank=2), AdapterTraining(epochs=5)
    )
    assert report.loss_last_epoch < 0.1


def test_bad_training_input_is_named() -> None:
    queries, pairs, corpus = mismatched_task()
    with pytest.raises(InputError, match="same encoder"):
        train_adapter(queries[:, :8], pairs, corpus)
    with pytest.raises(InputError, match="pair 1"):
        train_adapter(queries, [(0, 1), (0, 999)], corpus)
    broken = corpus.copy()
    broken[7, 3] = np.nan
    with pytest.raises(InputError, match="document vector 7 holds NaN"):
        train_adapter(queries, pairs, broken)
    with pytest.raises(InputError, match="no \\(query, positive\\) pairs"):
        train_adapter(queries, [], corpus)
    with pytest.raises(InputError, match="whole numbers"):
        train_adapter(queries, [(0, 1), (2,)], corpus)
    with pytest.raises(InputError, match="epochs"):
        AdapterTraining(epochs=0)
    with pytest.raises(InputError, match="seed"):
        AdapterTraining(seed=-1)


def test_saved_adapters_load_the_same_and_refuse_another_encoder(tmp_path: Path) -> None:
    queries, pairs, corpus = mismatched_task()
    spec = AdapterSpec(form="key-value", rank=8, sides="separate")
    adapter, report = train_adapter(queries, pairs, corpus, spec, AdapterTraining(epochs=2))
    folder = save_adapter(
        adapter,
        tmp_path / "adapter",
        encoder_fingerprint="abc123",
        info={"seconds": report.seconds},
    )
    loaded, card = load_adapter(folder, encoder_fingerprint="abc123")
    np.testing.assert_allclose(loaded.adapt_queries(queries), adapter.adapt_queries(queries))
    np.testing.assert_allclose(loaded.adapt_documents(corpus), adapter.adapt_documents(corpus))
    assert card["spec"] == spec.to_dict() and card["seconds"] == report.seconds
    with pytest.raises(InputError, match="trained on vectors of encoder 'abc123'"):
        load_adapter(folder, encoder_fingerprint="other-encoder")
    with pytest.raises(InputError, match="exists and is not empty"):
        save_adapter(adapter, folder, encoder_fingerprint="abc123")
    with pytest.raises(InputError, match="not an adapter folder"):
        load_adapter(tmp_path)
    (folder / "adapter.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="weights do not fit"):
        load_adapter(folder)


def test_notes_cannot_overwrite_what_the_adapter_is(tmp_path: Path) -> None:
    queries, pairs, corpus = mismatched_task()
    adapter, _ = train_adapter(
        queries, pairs, corpus, AdapterSpec(rank=2), AdapterTraining(epochs=1)
    )
    info = {"encoder_fingerprint": "forged", "dimension": 3}
    save_adapter(adapter, tmp_path / "a", encoder_fingerprint="real", info=info)
    _, card = load_adapter(tmp_path / "a", encoder_fingerprint="real")
    assert card["dimension"] == 16
