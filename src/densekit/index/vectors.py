"""Row access across a collection's memory-mapped shards, and passage-to-document grouping."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class ShardedVectors:
    """The float vectors of all shards as one row space, read on demand from the memory maps.

    Only the rows asked for are touched, so rescoring a shortlist keeps the shards on disk.
    """

    def __init__(self, shards: Sequence[np.ndarray]) -> None:
        self.shards = list(shards)
        sizes = [len(shard) for shard in self.shards]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.rows = int(self.starts[-1])
        self.dimension = int(self.shards[0].shape[1]) if self.shards else 0

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Vectors of ``rows`` (any shape of row numbers), as float32 of shape rows.shape + (d,)."""
        flat = np.asarray(rows, dtype=np.int64).ravel()
        out = np.empty((len(flat), self.dimension), dtype=np.float32)
        shard_of = np.searchsorted(self.starts, flat, side="right") - 1
        for shard in np.unique(shard_of):
            mask = shard_of == shard
            local = flat[mask] - self.starts[shard]
            order = np.argsort(local)  # sequential reads from the memory map
            picked = np.empty((len(local), self.dimension), dtype=np.float32)
            picked[order] = self.shards[shard][local[order]]
            out[mask] = picked
        return out.reshape(*np.shape(rows), self.dimension)

    def blocks(self, block_rows: int = 65_536) -> Iterator[np.ndarray]:
        """All vectors in order, ``block_rows`` at a time, as float32."""
        for shard in self.shards:
            for start in range(0, len(shard), block_rows):
                yield np.asarray(shard[start : start + block_rows], dtype=np.float32)

    def sample(self, count: int, seed: int = 0) -> np.ndarray:
        """``count`` distinct rows drawn uniformly (all rows when there are fewer)."""
        if count >= self.rows:
            return np.concatenate(list(self.blocks())) if self.rows else np.empty((0, 0))
        rows = np.sort(np.random.default_rng(seed).choice(self.rows, size=count, replace=False))
        return self.take(rows)


class PassageGroups:
    """Maps passage rows to their documents; ``offsets`` (documents + 1) or one row each.

    ``deleted`` marks tombstoned document rows (a boolean per document): their passages stay in
    the row space until compaction, and searches skip them.
    """

    def __init__(
        self, rows: int, offsets: np.ndarray | None, deleted: np.ndarray | None = None
    ) -> None:
        self.rows = rows
        self.offsets = offsets
        self.documents = rows if offsets is None else len(offsets) - 1
        self.row_document = None if offsets is None else _row_documents(offsets)
        self.deleted, self.live_documents = tombstones(deleted, self.documents)
        # The same marks per passage row, for indexes that return passages.
        self.deleted_rows: np.ndarray | None = None
        if self.deleted is not None:
            self.deleted_rows = (
                self.deleted if self.row_document is None else self.deleted[self.row_document]
            )
        _, self.live_rows = tombstones(self.deleted_rows, rows)
        # The most passages any document has (at least 1): how far searches must over-fetch.
        self.passages_per_document = (
            1 if offsets is None or self.documents == 0 else max(1, int(np.diff(offsets).max()))
        )

    def passages_of(self, rows: np.ndarray) -> np.ndarray:
        """The passage rows of the documents at ``rows``, each document's in order."""
        if self.offsets is None:
            return rows
        return np.concatenate(
            [np.arange(self.offsets[row], self.offsets[row + 1]) for row in rows]
            or [np.empty(0, np.int64)]
        )

    def top_documents(
        self, rows: np.ndarray, scores: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per query, the best ``k`` documents among scored passage rows (a document scores its
        best passage). Rows of -1 (no candidate) are ignored; missing places are -1 / -inf."""
        if self.row_document is None:  # one passage per document: a vectorised top-k
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            top_rows = np.take_along_axis(rows, order, axis=1)
            top_scores = np.take_along_axis(scores, order, axis=1)
            return top_rows, np.where(top_rows >= 0, top_scores, -np.inf).astype(np.float32)
        nq = len(rows)
        out_rows = np.full((nq, k), -1, dtype=np.int64)
        out_scores = np.full((nq, k), -np.inf, dtype=np.float32)
        for q in range(nq):
            valid = rows[q] >= 0
            docs = self.row_document[rows[q][valid]]
            ranked = np.argsort(-scores[q][valid], kind="stable")
            docs, best = docs[ranked], scores[q][valid][ranked]
            _, first = np.unique(docs, return_index=True)  # first occurrence = best passage
            first = np.sort(first)[:k]
            out_rows[q, : len(first)] = docs[first]
            out_scores[q, : len(first)] = best[first]
        return out_rows, out_scores


def tombstones(deleted: np.ndarray | None, total: int) -> tuple[np.ndarray | None, int]:
    """``deleted`` (a boolean per row), or ``None`` when no row is deleted; and the live count."""
    if deleted is None or not deleted.any():
        return None, total
    return deleted, total - int(deleted.sum())


def deletion_mask(deleted_rows: np.ndarray, documents: int) -> np.ndarray:
    """A boolean per document row, true for the tombstoned ``deleted_rows``."""
    mask = np.zeros(documents, dtype=bool)
    mask[np.asarray(deleted_rows, dtype=np.int64)] = True
    return mask


def _row_documents(offsets: np.ndarray) -> np.ndarray:
    counts = np.diff(offsets)
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)
