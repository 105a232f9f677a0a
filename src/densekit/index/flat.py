"""Exact inner-product search over memory-mapped shards, aggregated to documents by max."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from densekit.errors import InputError
from densekit.index.vectors import PassageGroups, ShardedVectors, tombstones

# Bound on the (queries x documents) score matrix held at once.
_SCORE_BUDGET_BYTES = 256 * 1024 * 1024


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top ``k`` of a score matrix, best first: (indices, scores)."""
    k = min(k, scores.shape[1])
    if k == 0:
        empty = np.empty((scores.shape[0], 0))
        return empty.astype(np.int64), empty.astype(np.float32)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


class FlatIndex:
    """Brute-force inner product: exact, and the reference every approximate index is judged by.

    ``passage_offsets`` (length documents + 1) maps consecutive passage rows to their document;
    ``None`` means one row per document. ``deleted`` (a boolean per document) marks tombstoned
    documents, which never rank.
    """

    spec = "flat"

    def __init__(
        self,
        shards: Sequence[np.ndarray],
        passage_offsets: np.ndarray | None = None,
        deleted: np.ndarray | None = None,
    ):
        self.shards = list(shards)
        self.rows = sum(len(s) for s in self.shards)
        self.passage_offsets = passage_offsets
        self.documents = self.rows if passage_offsets is None else len(passage_offsets) - 1
        self.deleted, self.live_documents = tombstones(deleted, self.documents)

    @classmethod
    def over(cls, vectors: ShardedVectors, groups: PassageGroups) -> FlatIndex:
        """Exact search over a collection's vectors, grouped and tombstoned like ``groups``."""
        return cls(vectors.shards, groups.offsets, groups.deleted)

    def search(self, queries: np.ndarray, k: int, **params: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` documents per query: (document rows, scores), each of shape (nq, k)."""
        if params:
            raise InputError(
                f"the exact flat index takes no search settings (got {', '.join(params)}); "
                "they apply to HNSW, IVF and rescoring specs"
            )
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self.live_documents)
        per_batch = max(1, _SCORE_BUDGET_BYTES // (4 * max(1, self.rows)))
        rows, scores = [], []
        for start in range(0, len(queries), per_batch):
            batch_rows, batch_scores = top_k(
                self.document_scores(queries[start : start + per_batch]), k
            )
            rows.append(batch_rows)
            scores.append(batch_scores)
        if not rows:
            return np.empty((0, 0), np.int64), np.empty((0, 0), np.float32)
        return np.concatenate(rows), np.concatenate(scores)

    def document_scores(self, queries: np.ndarray) -> np.ndarray:
        """Exact score of every document for each query (max over a document's passages)."""
        scores = np.concatenate([queries @ shard.T for shard in self.shards], axis=1)
        if self.passage_offsets is not None:
            scores = np.maximum.reduceat(scores, self.passage_offsets[:-1], axis=1)
        if self.deleted is not None:
            scores[:, self.deleted] = -np.inf
        return scores
