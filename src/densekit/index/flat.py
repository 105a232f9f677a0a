"""Exact inner-product search over memory-mapped shards, aggregated to documents by max."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from densekit.errors import InputError
from densekit.index.vectors import PassageGroups, ShardedVectors, tombstones

# Bound on the (queries x documents) score matrix held at once.
_SCORE_BUDGET_BYTES = 256 * 1024 * 1024
# Passages a filtered search reads and scores at once.
_BLOCK_PASSAGES = 65_536


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
        self._last_gathered: tuple[np.ndarray, list] | None = None

    @classmethod
    def over(cls, vectors: ShardedVectors, groups: PassageGroups) -> FlatIndex:
        """Exact search over a collection's vectors, grouped and tombstoned like ``groups``."""
        return cls(vectors.shards, groups.offsets, groups.deleted)

    def search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None, **params: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` documents per query: (document rows, scores), each of shape (nq, k).

        ``allowed`` (a boolean per document row) limits the search to those documents: the
        answer is exact search over a collection of only them.
        """
        if params:
            raise InputError(
                f"the exact flat index takes no search settings (got {', '.join(params)}); "
                "they apply to HNSW, IVF and rescoring specs"
            )
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        excluded, k = self.deleted, min(k, self.live_documents)
        if allowed is not None:
            live = allowed if self.deleted is None else allowed & ~self.deleted
            documents = np.flatnonzero(live)
            if len(documents) <= self.documents // 4:  # a few: score only theirs
                return self._search_among(queries, min(k, len(documents)), allowed, documents)
            excluded, k = ~live, min(k, len(documents))
        per_batch = max(1, _SCORE_BUDGET_BYTES // (4 * max(1, self.rows)))
        rows, scores = [], []
        for start in range(0, len(queries), per_batch):
            batch = self.document_scores(queries[start : start + per_batch], excluded)
            batch_rows, batch_scores = top_k(batch, k)
            rows.append(batch_rows)
            scores.append(batch_scores)
        if not rows:
            return np.empty((0, 0), np.int64), np.empty((0, 0), np.float32)
        return np.concatenate(rows), np.concatenate(scores)

    def _search_among(
        self, queries: np.ndarray, k: int, allowed: np.ndarray, documents: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``k`` over ``documents`` (the live ones ``allowed`` names) alone, a block
        of their passages at a time, and as many queries at once as the score budget allows
        (a block's scores, ranks and rows take about 28 bytes per query and passage)."""
        best_rows = np.empty((len(queries), 0), dtype=np.int64)
        best_scores = np.empty((len(queries), 0), dtype=np.float32)
        if len(queries) == 0:
            return best_rows, best_scores
        per_batch = max(1, _SCORE_BUDGET_BYTES // (28 * _BLOCK_PASSAGES))
        for block_documents, vectors, starts in self._gathered(allowed, documents):
            found_rows, found_scores = [], []
            for start in range(0, len(queries), per_batch):
                batch = slice(start, start + per_batch)
                scores = queries[batch] @ vectors.T
                if starts is not None:
                    scores = np.maximum.reduceat(scores, starts, axis=1)
                merged_scores = np.concatenate([best_scores[batch], scores], axis=1)
                merged_rows = np.concatenate(
                    [best_rows[batch], np.broadcast_to(block_documents, scores.shape)], axis=1
                )
                order, kept = top_k(merged_scores, k)
                found_rows.append(np.take_along_axis(merged_rows, order, axis=1))
                found_scores.append(kept)
            best_rows, best_scores = np.concatenate(found_rows), np.concatenate(found_scores)
        return best_rows, best_scores.astype(np.float32)

    def _gathered(
        self, allowed: np.ndarray, documents: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """The passages of ``documents`` read from the shards, block by block. Reading them is
        most of a filtered search's time, so the last read-only mask's blocks are kept when
        they fit the score budget: the next search with the same filter only multiplies."""
        kept = self._last_gathered
        if kept is not None and kept[0] is allowed:
            yield from kept[1]
            return
        vectors = ShardedVectors(self.shards)
        blocks, size = [], 0
        for part, passages, starts in self._passage_blocks(documents):
            block = (part, vectors.take(passages), starts)
            size += block[1].nbytes
            if size <= _SCORE_BUDGET_BYTES:
                blocks.append(block)
            yield block
        if not allowed.flags.writeable and size <= _SCORE_BUDGET_BYTES:
            self._last_gathered = (allowed, blocks)

    def _passage_blocks(
        self, documents: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """``documents`` in blocks of about ``_BLOCK_PASSAGES`` passages: (documents, their
        passage rows, where each document's passages start in the block; None: one each)."""
        if self.passage_offsets is None:
            for start in range(0, len(documents), _BLOCK_PASSAGES):
                part = documents[start : start + _BLOCK_PASSAGES]
                yield part, part, None
            return
        counts = np.diff(self.passage_offsets)[documents]
        ends = np.cumsum(counts)
        start = 0
        while start < len(documents):
            stop = max(start + 1, int(np.searchsorted(ends, ends[start] + _BLOCK_PASSAGES)))
            part, part_counts = documents[start:stop], counts[start:stop]
            starts = np.concatenate([[0], np.cumsum(part_counts)[:-1]]).astype(np.int64)
            first = np.repeat(self.passage_offsets[part], part_counts)
            passages = first + np.arange(int(part_counts.sum())) - np.repeat(starts, part_counts)
            yield part, passages, starts
            start = stop

    def document_scores(
        self, queries: np.ndarray, excluded: np.ndarray | None = None
    ) -> np.ndarray:
        """Exact score of every document for each query (max over a document's passages);
        -inf for the ``excluded`` documents (default: the deleted ones)."""
        scores = np.concatenate([queries @ shard.T for shard in self.shards], axis=1)
        if self.passage_offsets is not None:
            scores = np.maximum.reduceat(scores, self.passage_offsets[:-1], axis=1)
        excluded = self.deleted if excluded is None else excluded
        if excluded is not None:
            scores[:, excluded] = -np.inf
        return scores
