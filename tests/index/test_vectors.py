"""Row access across shards and the passage-to-document grouping."""

from __future__ import annotations

import numpy as np

from densekit.index.vectors import PassageGroups, ShardedVectors


def test_take_reads_rows_across_shards_in_any_order() -> None:
    full = np.arange(30, dtype=np.float32).reshape(10, 3)
    vectors = ShardedVectors([full[:4], full[4:5], full[5:]])
    rows = np.array([[9, 0, 4], [5, 5, 3]])
    np.testing.assert_array_equal(vectors.take(rows), full[rows])
    assert vectors.rows == 10 and vectors.dimension == 3
    np.testing.assert_array_equal(np.concatenate(list(vectors.blocks(3))), full)


def test_sample_draws_distinct_rows() -> None:
    full = np.arange(200, dtype=np.float32).reshape(100, 2)
    sample = ShardedVectors([full[:50], full[50:]]).sample(30, seed=3)
    assert sample.shape == (30, 2)
    assert len({tuple(row) for row in sample}) == 30
    assert ShardedVectors([full]).sample(500).shape == (100, 2)


def test_documents_score_their_best_passage_and_appear_once() -> None:
    groups = PassageGroups(6, np.array([0, 2, 3, 6]))  # documents of 2, 1 and 3 passages
    rows = np.array([[5, 0, 1, 4, 2, -1]])
    scores = np.array([[0.9, 0.8, 0.95, 0.1, 0.5, -np.inf]], dtype=np.float32)
    top_rows, top_scores = groups.top_documents(rows, scores, 3)
    np.testing.assert_array_equal(top_rows, [[0, 2, 1]])
    np.testing.assert_allclose(top_scores, [[0.95, 0.9, 0.5]])
    assert groups.passages_per_document == 3


def test_short_candidate_lists_are_padded() -> None:
    groups = PassageGroups(4, np.array([0, 2, 4]))
    top_rows, top_scores = groups.top_documents(np.array([[1, 0]]), np.array([[0.3, 0.2]]), 2)
    np.testing.assert_array_equal(top_rows, [[0, -1]])
    assert top_scores[0, 1] == -np.inf
