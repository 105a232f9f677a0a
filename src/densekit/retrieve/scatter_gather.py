"""Searching a sharded collection: every shard is asked for its top k, the lists are merged.

Queries are encoded (or analysed) once, here; each shard only searches its index
(:class:`ShardSearch`, in threads here, or in its own process on a cluster). Merged lists are the
unsharded collection's: exact indexes score a document the same in its shard as in one index of
everything, BM25 because every shard was scored with the collection's statistics. Calibration
uses what an unsharded collection would: the same reference documents, BM25 ceilings from the
summed document frequencies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from densekit.errors import CollectionError
from densekit.index.bm25_statistics import bm25_ceilings
from densekit.retrieve.ranking import REFERENCE_DOCUMENTS, Ranking, ScoreScale, reference_scales
from densekit.store.collection import StoredCollection

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

    from densekit.encode import Encoder
    from densekit.store.sharded import ShardedStore

Found = list[tuple[np.ndarray, np.ndarray]]  # per query: (rows, scores), best first
T = TypeVar("T")


class ShardSearch:
    """One shard's side of a search: its top ``k`` for queries encoded or analysed elsewhere,
    in its own rows. Holds the shard's indexes open; a cluster runs one per shard."""

    def __init__(self, shard: StoredCollection | str | Path) -> None:
        self.stored = shard if isinstance(shard, StoredCollection) else StoredCollection(shard)

    def dense(self, vectors: np.ndarray, k: int, params: dict[str, int]) -> Found:
        rows, scores = self.stored.dense_index.search(vectors, k, **params)
        # Approximate indexes pad lists they could not fill with row -1.
        return [(r[r >= 0].astype(np.int64), s[r >= 0]) for r, s in zip(rows, scores, strict=True)]

    def lexical(self, tokens: list[list[str]], k: int) -> tuple[Found, list[np.ndarray], int]:
        """Top ``k`` by BM25, with the shard's document frequencies of the query terms and
        its document count (the collection's ceilings are computed from their sums)."""
        index = self.stored.lexical_index
        return index.search_terms(tokens, k), index.frequencies(tokens), index.documents

    def sparse(self, vectors: csr_matrix, k: int) -> Found:
        return self.stored.sparse_index.search(vectors, k)

    def dense_reference(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of the documents at ``rows`` (every passage of each, in order)."""
        vectors, groups = self.stored.dense_vectors()
        return vectors.take(groups.passages_of(rows))

    def sparse_reference(self, rows: np.ndarray) -> csr_matrix:
        return self.stored.sparse_index.document_rows(rows)


@dataclass
class Shards:
    """The shards of one collection, searched side by side."""

    searches: list[ShardSearch]
    pool: Executor = field(default_factory=lambda: ThreadPoolExecutor(thread_name_prefix="shard"))

    def each(self, call: Callable[[ShardSearch], T]) -> list[T]:
        """``call`` on every shard at once; results in shard order."""
        return list(self.pool.map(call, self.searches))

    def merge(self, found: Sequence[Found], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, the best ``k`` of every shard's list, in global rows."""
        count = len(found)
        merged = []
        for lists in zip(*found, strict=True):
            rows = np.concatenate(
                [r.astype(np.int64) * count + shard for shard, (r, _) in enumerate(lists)]
            )
            scores = np.concatenate([s for _, s in lists]).astype(np.float32)
            order = np.argsort(-scores, kind="stable")[:k]
            merged.append((rows[order], scores[order]))
        return merged


@dataclass
class ShardedDenseRetriever:
    shards: Shards
    encoder: Encoder
    index_params: dict[str, int]
    reference: np.ndarray
    name: str = "dense"

    def retrieve(self, queries: Sequence[str], k: int) -> list[Ranking]:
        vectors = self.encoder.encode_queries(queries)
        found = self.shards.each(lambda shard: shard.dense(vectors, k, self.index_params))
        scales = reference_scales(vectors @ self.reference.T)
        return [
            Ranking(rows, scores, scale)
            for (rows, scores), scale in zip(self.shards.merge(found, k), scales, strict=True)
        ]


@dataclass
class ShardedLexicalRetriever:
    shards: Shards
    analyse: Callable[[Sequence[str]], list[list[str]]]
    weight: Callable[[str], float]
    name: str = "bm25"

    def retrieve(self, queries: Sequence[str], k: int) -> list[Ranking]:
        tokens = self.analyse(queries)
        answers = self.shards.each(lambda shard: shard.lexical(tokens, k))
        frequencies = [
            np.sum([counts[number] for _, counts, _ in answers], axis=0)
            for number in range(len(tokens))
        ]
        documents = sum(count for _, _, count in answers)
        ceilings = bm25_ceilings(tokens, frequencies, documents, self.weight)
        merged = self.shards.merge([found for found, _, _ in answers], k)
        return [
            Ranking(rows, scores, ScoreScale(0.0, float(ceiling)) if ceiling > 0 else None)
            for (rows, scores), ceiling in zip(merged, ceilings, strict=True)
        ]


@dataclass
class ShardedSparseRetriever:
    shards: Shards
    encoder: Callable[[Sequence[str]], csr_matrix]
    reference: csr_matrix
    name: str = "splade"

    def retrieve(self, queries: Sequence[str], k: int) -> list[Ranking]:
        vectors = self.encoder(queries)
        found = self.shards.each(lambda shard: shard.sparse(vectors, k))
        scales = reference_scales((vectors @ self.reference.T).toarray())
        return [
            Ranking(rows, scores, scale)
            for (rows, scores), scale in zip(self.shards.merge(found, k), scales, strict=True)
        ]


def open_sharded_retriever(
    store: ShardedStore,
    name: str,
    query_encoder: Callable[[], Encoder],
    index_params: dict[str, int] | None = None,
    shards: Shards | None = None,
) -> ShardedDenseRetriever | ShardedLexicalRetriever | ShardedSparseRetriever:
    """The ``name`` retriever (dense, bm25 or splade) over every shard of ``store``."""
    shards = shards or Shards([ShardSearch(shard) for shard in store.shards])
    if name == "dense":
        reference = _reference(store, shards, ShardSearch.dense_reference, np.concatenate)
        return ShardedDenseRetriever(shards, query_encoder(), dict(index_params or {}), reference)
    if name == "bm25":
        first = store.shards[0].lexical_index
        return ShardedLexicalRetriever(shards, first.analyse, first.weight)
    if name == "splade":
        from scipy.sparse import vstack

        reference = _reference(store, shards, ShardSearch.sparse_reference, vstack)
        encoder = store.shards[0].sparse_encoder
        return ShardedSparseRetriever(shards, encoder.encode_queries, reference)
    raise CollectionError(f"{store.directory}: no retriever named {name!r}")


def _reference(
    store: ShardedStore,
    shards: Shards,
    vectors_of: Callable[[ShardSearch, np.ndarray], T],
    stack: Callable[[list[T]], T],
) -> T:
    """The reference documents' vectors, in the order an unsharded collection holds them (so
    the means and spreads it calibrates with come out the same, bit for bit)."""
    chosen = store.reference_documents(REFERENCE_DOCUMENTS)  # (shard, row), in hash order
    parts = []
    for shard, row in chosen:
        parts.append(vectors_of(shards.searches[shard], np.array([row], dtype=np.int64)))
    return stack(parts)
