"""Multi-vector search: int8 token storage, exact MaxSim, candidates from a token index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from densekit.errors import InputError
from densekit.index.late_interaction import (
    MultiVectorIndex,
    TokenVectors,
    dequantise,
    quantise,
)

DIM = 32


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def documents(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [unit(rng.normal(size=(int(rng.integers(3, 12)), DIM))) for _ in range(count)]


def maxsim(query: np.ndarray, tokens: np.ndarray) -> float:
    """The reference: for each query token its best document token, summed."""
    return float(sum(max(float(q @ t) for t in tokens) for q in query))


def test_int8_codes_keep_each_component_within_half_a_step() -> None:
    vectors = unit(np.random.default_rng(1).normal(size=(200, DIM)))
    assert np.abs(dequantise(quantise(vectors)) - vectors).max() <= 0.5 / 127 + 1e-7


def test_maxsim_equals_the_definition_on_the_stored_tokens() -> None:
    docs = documents(40)
    stored = TokenVectors.from_documents(docs)
    query = unit(np.random.default_rng(2).normal(size=(5, DIM)))
    rows = np.array([3, 0, 39, 17])
    expected = [maxsim(query, dequantise(quantise(docs[r]))) for r in rows]
    assert stored.maxsim(query, rows) == pytest.approx(expected, rel=1e-5)


def test_maxsim_in_small_batches_equals_one_batch(monkeypatch) -> None:
    import densekit.index.late_interaction as module

    stored = TokenVectors.from_documents(documents(30))
    query = unit(np.random.default_rng(3).normal(size=(4, DIM)))
    whole = stored.maxsim(query, np.arange(30))
    monkeypatch.setattr(module, "_SCORE_BUDGET_BYTES", 4 * 4 * 10)  # ~one document a batch
    assert stored.maxsim(query, np.arange(30)) == pytest.approx(whole, rel=1e-6)


def test_a_query_made_of_a_documents_tokens_finds_it_through_the_token_index() -> None:
    docs = documents(200)
    stored = TokenVectors.from_documents(docs)
    index = MultiVectorIndex(stored, MultiVectorIndex.build_token_index(stored))
    for target in (0, 57, 199):
        query = docs[target][:3] + 0.01  # near three of its tokens
        rows, scores = index.rank(unit(query), k=5, per_token=4)
        assert rows[0] == target
        exhaustive = stored.maxsim(unit(query), np.arange(200))
        assert scores[0] == pytest.approx(exhaustive.max(), rel=1e-6)


def test_deleted_documents_never_rank() -> None:
    docs = documents(20)
    stored = TokenVectors.from_documents(docs)
    deleted = np.zeros(20, dtype=bool)
    deleted[5] = True
    index = MultiVectorIndex(stored, MultiVectorIndex.build_token_index(stored), deleted)
    rows, _ = index.rank(docs[5][:2], k=20, per_token=20)
    assert 5 not in rows
    rows, _ = index.rank(docs[5][:2], k=20, rows=np.arange(20))
    assert 5 not in rows and len(rows) == 19


def test_token_vectors_round_trip_memory_mapped(tmp_path: Path) -> None:
    stored = TokenVectors.from_documents(documents(10))
    stored.save(tmp_path)
    loaded = TokenVectors.load(tmp_path)
    assert isinstance(loaded.codes, np.memmap)
    assert np.array_equal(loaded.codes, stored.codes)
    assert np.array_equal(loaded.offsets, stored.offsets)


def test_decoded_token_vectors_score_as_the_codes_and_take_keeps_documents() -> None:
    stored = TokenVectors.from_documents(documents(25))
    query = unit(np.random.default_rng(4).normal(size=(6, DIM)))
    rows = np.array([24, 3, 3, 0])
    decoded = stored.dequantised()
    assert decoded.codes.dtype == np.float32
    assert decoded.maxsim(query, rows) == pytest.approx(stored.maxsim(query, rows), rel=1e-6)
    taken = stored.take(rows)
    assert taken.maxsim(query, np.arange(4)) == pytest.approx(stored.maxsim(query, rows))


def test_bad_token_storage_is_refused() -> None:
    with pytest.raises(InputError, match="at least one token"):
        TokenVectors.from_documents([np.zeros((0, DIM), np.float32)])
    with pytest.raises(InputError, match="int8"):
        TokenVectors(np.zeros((3, DIM), np.float64), np.array([0, 3]))
    with pytest.raises(InputError, match="offsets must run"):
        TokenVectors(np.zeros((3, DIM), np.int8), np.array([0, 2]))
    with pytest.raises(InputError, match="no token vectors"):
        TokenVectors(np.zeros((3, DIM), np.int8), np.array([0, 2, 2, 3]))
    index = MultiVectorIndex(TokenVectors.from_documents(documents(3)))
    with pytest.raises(InputError, match="no token index"):
        index.rank(unit(np.ones((1, DIM))), k=1)
