from __future__ import annotations

import numpy as np

from densekit.index import FlatIndex, top_k


def test_flat_matches_brute_force_across_shards() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((50, 8)).astype(np.float32)
    queries = rng.standard_normal((7, 8)).astype(np.float32)
    index = FlatIndex([vectors[:20], vectors[20:35], vectors[35:]])
    rows, scores = index.search(queries, k=5)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(
        scores, np.take_along_axis(queries @ vectors.T, expected, 1), rtol=1e-5
    )


def test_passages_aggregate_to_documents_by_max_even_across_shard_boundaries() -> None:
    passages = np.array([[1, 0], [0, 1], [0.5, 0.5], [0.9, 0.1], [0, 0.2]], dtype=np.float32)
    offsets = np.array([0, 2, 4, 5])  # doc0: p0-p1, doc1: p2-p3 (split across shards), doc2: p4
    index = FlatIndex([passages[:3], passages[3:]], offsets)
    rows, scores = index.search(np.array([[0, 1]], dtype=np.float32), k=3)
    assert rows.tolist() == [[0, 1, 2]]
    np.testing.assert_allclose(scores, [[1.0, 0.5, 0.2]])


def test_k_larger_than_collection_returns_everything_sorted() -> None:
    rows, scores = top_k(np.array([[0.1, 0.9, 0.5]], dtype=np.float32), 10)
    assert rows.tolist() == [[1, 2, 0]]
    assert scores.tolist()[0] == sorted(scores.tolist()[0], reverse=True)


def test_deleted_documents_never_rank() -> None:
    passages = np.array([[1, 0], [0, 1], [0.5, 0.5], [0.9, 0.1], [0, 0.2]], dtype=np.float32)
    offsets = np.array([0, 2, 4, 5])
    index = FlatIndex([passages], offsets, deleted=np.array([True, False, False]))
    rows, scores = index.search(np.array([[0, 1]], dtype=np.float32), k=3)
    assert rows.tolist() == [[1, 2]]  # k is clamped to the live documents
    np.testing.assert_allclose(scores, [[0.5, 0.2]])
