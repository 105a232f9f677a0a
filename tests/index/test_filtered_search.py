"""Filtered search inside the indexes: exact search over only the allowed documents is the
answer flat gives and the one approximate indexes are judged by, at every selectivity."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import clustered as clustered_rows

from densekit.index import FlatIndex
from densekit.index.ann import FILTERED_EXACT_ROWS, AnnIndex
from densekit.index.sparse import SparseIndex
from densekit.index.vectors import PassageGroups, ShardedVectors


def clustered(count: int, seed: int) -> np.ndarray:
    return clustered_rows(count, seed, dimension=32)


def allowed_share(documents: int, share: float, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).random(documents) < share


def only(vectors: np.ndarray, offsets: np.ndarray | None, allowed: np.ndarray) -> tuple:
    """The allowed documents as a collection of their own, and their old rows."""
    rows = np.flatnonzero(allowed)
    if offsets is None:
        return FlatIndex([vectors[rows]]), rows
    parts = [vectors[offsets[r] : offsets[r + 1]] for r in rows]
    counts = [len(part) for part in parts]
    return FlatIndex([np.concatenate(parts)], np.concatenate([[0], np.cumsum(counts)])), rows


@pytest.mark.parametrize("share", [0.002, 0.05, 0.3, 0.9])
@pytest.mark.parametrize("passages", [False, True])
def test_flat_is_exact_search_over_a_collection_of_only_the_allowed(
    share: float, passages: bool
) -> None:
    vectors = clustered(4000, seed=1)
    offsets = np.arange(0, 4001, 2) if passages else None  # two passages per document
    documents = 2000 if passages else 4000
    allowed = allowed_share(documents, share)
    queries = clustered(8, seed=2)
    index = FlatIndex([vectors[:1500], vectors[1500:]], offsets)
    found, scores = index.search(queries, 10, allowed=allowed)
    alone, old_rows = only(vectors, offsets, allowed)
    expected, expected_scores = alone.search(queries, 10)
    assert np.array_equal(found, old_rows[expected])
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)


def test_flat_skips_deleted_documents_among_the_allowed() -> None:
    vectors = clustered(300, seed=1)
    deleted = np.zeros(300, dtype=bool)
    deleted[::2] = True
    allowed = np.zeros(300, dtype=bool)
    allowed[:20] = True
    found, _ = FlatIndex([vectors], deleted=deleted).search(vectors[:3], 50, allowed=allowed)
    assert found.shape == (3, 10)  # only 10 are allowed and live
    assert set(found.ravel()) == set(range(1, 20, 2))


def ann(spec: str, vectors: np.ndarray, offsets: np.ndarray | None = None) -> AnnIndex:
    stored = ShardedVectors([vectors])
    return AnnIndex.build(spec, stored, PassageGroups(stored.rows, offsets))


@pytest.fixture(scope="module")
def large() -> np.ndarray:
    # Enough rows that a 10% filter is searched by the index, not exactly.
    return clustered(FILTERED_EXACT_ROWS * 3, seed=5)


_BUILT: dict[str, AnnIndex] = {}


@pytest.mark.parametrize(
    "spec", ["HNSW16", "IVF64,Flat(nprobe=4)", "IVF64,PQ8(nprobe=4)+rescore*8", "PQ8+rescore*8"]
)
@pytest.mark.parametrize("share", [0.001, 0.1, 0.5])
def test_approximate_indexes_return_only_allowed_documents_with_high_recall(
    large: np.ndarray, spec: str, share: float
) -> None:
    if spec not in _BUILT:  # one build per spec, for every share
        _BUILT[spec] = ann(spec, large)
    index = _BUILT[spec]
    allowed = allowed_share(len(large), share)
    queries = clustered(20, seed=6)
    found, _ = index.search(queries, 10, allowed=allowed)
    truth, _ = FlatIndex([large]).search(queries, 10, allowed=allowed)
    assert np.all(allowed[found[found >= 0]])
    assert np.all(found >= 0)  # enough allowed documents for every query
    # As good as the same index without a filter (against exact search without one).
    unfiltered, _ = index.search(queries, 10)
    unfiltered_truth, _ = FlatIndex([large]).search(queries, 10)
    assert overlap(found, truth) >= min(0.9, overlap(unfiltered, unfiltered_truth) - 0.05)
    if share <= 0.1:  # without the filter, most of the top 10 would be other documents
        assert np.mean(allowed[unfiltered]) < 0.5


def overlap(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


def test_searches_widen_in_proportion_to_the_filter(large: np.ndarray) -> None:
    half = np.arange(len(large)) % 2 == 0
    ivf = ann("IVF64,Flat(nprobe=2)", large)._among(half)
    assert ivf._widened({}) == {"nprobe": 4}
    assert ivf._widened({"nprobe": 40}) == {"nprobe": 64}  # all there are
    hnsw = ann("HNSW16(efSearch=32)", large)._among(half)
    assert hnsw._widened({}) == {"efSearch": 64}


def test_filtered_search_keeps_deleted_documents_out_and_groups_passages() -> None:
    vectors = clustered(FILTERED_EXACT_ROWS * 3, seed=8)
    offsets = np.arange(0, len(vectors) + 1, 3)  # three passages per document
    documents = len(offsets) - 1
    deleted = np.zeros(documents, dtype=bool)
    deleted[::3] = True
    stored = ShardedVectors([vectors])
    index = AnnIndex.build("HNSW16", stored, PassageGroups(stored.rows, offsets, deleted))
    allowed = allowed_share(documents, 0.6)
    found, _ = index.search(clustered(5, seed=9), 10, allowed=allowed)
    assert np.all(found >= 0)
    assert np.all(allowed[found]) and not np.any(deleted[found])
    assert all(len(set(row)) == len(row) for row in found)  # documents, not passages


def test_sparse_ranks_only_allowed_documents() -> None:
    from scipy.sparse import csr_matrix

    documents = csr_matrix(np.eye(6, 4, dtype=np.float32) + 0.1)
    index = SparseIndex.from_documents(documents)
    query = csr_matrix(np.array([[1.0, 0, 0, 0]], dtype=np.float32))
    allowed = np.array([False, True, True, False, True, True])
    [(rows, _)] = index.search(query, 3, allowed)
    assert rows.tolist()[0] != 0 and set(rows.tolist()) <= {1, 2, 4, 5}


def test_a_read_only_mask_searched_again_gives_the_same_answer() -> None:
    # A filter's mask is kept read-only by the collection; its gathered vectors are reused.
    vectors = clustered(3000, seed=1)
    offsets = np.arange(0, 3001, 3)
    index = FlatIndex([vectors], offsets)
    mask = allowed_share(1000, 0.1)
    fresh = index.search(vectors[:5], 10, allowed=mask.copy())
    mask.setflags(write=False)
    first = index.search(vectors[:5], 10, allowed=mask)
    again = index.search(vectors[5:10], 10, allowed=mask)
    assert index._last_gathered is not None and index._last_gathered[0] is mask
    np.testing.assert_array_equal(first[0], fresh[0])
    np.testing.assert_array_equal(again[0], index.search(vectors[5:10], 10, allowed=mask.copy())[0])
    other = allowed_share(1000, 0.1, seed=9)
    other.setflags(write=False)
    assert set(index.search(vectors[:1], 10, allowed=other)[0][0]) <= set(np.flatnonzero(other))


@pytest.mark.parametrize("spec", ["IVF64,Flat", "HNSW16"])
def test_a_widened_filtered_search_leaves_later_searches_as_they_were(
    large: np.ndarray, spec: str
) -> None:
    index = ann(spec, large)
    queries = clustered(10, seed=4)
    before = index.search(queries, 10)
    index.search(queries, 10, allowed=allowed_share(len(large), 0.5))
    after = index.search(queries, 10)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_many_queries_are_scored_a_batch_at_a_time_with_the_same_answer(monkeypatch) -> None:
    from densekit.index import flat

    vectors = clustered(2000, seed=1)
    index = FlatIndex([vectors], np.arange(0, 2001, 2))
    allowed = allowed_share(1000, 0.2)
    queries = clustered(50, seed=2)
    whole = index.search(queries, 10, allowed=allowed)
    # A budget of a few queries per block of passages: 50 queries in several batches.
    monkeypatch.setattr(flat, "_SCORE_BUDGET_BYTES", 28 * flat._BLOCK_PASSAGES * 7)
    monkeypatch.setattr(flat, "_BLOCK_PASSAGES", 64)
    batched = FlatIndex([vectors], np.arange(0, 2001, 2)).search(queries, 10, allowed=allowed)
    np.testing.assert_array_equal(whole[0], batched[0])
    np.testing.assert_allclose(whole[1], batched[1], rtol=1e-6)
