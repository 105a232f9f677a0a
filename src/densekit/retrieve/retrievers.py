"""First-stage retrievers: queries in, ranked rows of the live documents out.

Every candidate stage of a pipeline is a :class:`Retriever`; a collection makes its own with
:func:`open_retriever`. A retriever reads an index and, where it needs one, an encoder for the
queries; it never changes either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from densekit.errors import CollectionError, InputError
from densekit.index.late_interaction import NO_MULTIVECTOR_FILTERS, token_search_settings
from densekit.retrieve.ranking import (
    REFERENCE_DOCUMENTS,
    REFERENCE_TOKEN_DOCUMENTS,
    Ranking,
    ScoreScale,
    maxsim_scales,
    reference_scales,
)

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

    from densekit.corpus.filters import Filter
    from densekit.encode import Encoder
    from densekit.encode.late_interaction import LateInteractionEncoder
    from densekit.encode.sparse import SparseTextEncoder
    from densekit.index import FlatIndex, LexicalIndex
    from densekit.index.ann import AnnIndex
    from densekit.index.late_interaction import MultiVectorIndex, TokenVectors
    from densekit.index.sparse import SparseIndex
    from densekit.store.collection import StoredCollection
    from densekit.store.document_filters import DocumentFilters
    from densekit.store.sharded import ShardedStore


class Retriever(Protocol):
    """Ranks the live documents of one index for each query, best first."""

    name: str

    def retrieve(
        self, queries: Sequence[str], k: int, where: Filter | None = None
    ) -> list[Ranking]:
        """Each query's best ``k``; ``where`` limits the search to the documents it matches,
        inside the index's search (not after it)."""
        ...


@dataclass
class DenseRetriever:
    """Nearest neighbours of the encoded queries in a vector index; ``index_params`` tune an
    approximate index per search (``efSearch``, ``nprobe``, ``rescore``)."""

    index: FlatIndex | AnnIndex
    encoder: Encoder
    index_params: dict[str, int] = field(default_factory=dict)
    name: str = "dense"
    # Vectors of a fixed sample of the collection's documents, which calibrate each query's
    # scores (None: the lists carry no scale).
    reference: np.ndarray | None = None
    filters: DocumentFilters | None = None

    def retrieve(
        self, queries: Sequence[str], k: int, where: Filter | None = None
    ) -> list[Ranking]:
        allowed = allowed_documents(self.filters, where)
        vectors = self.encoder.encode_queries(queries)
        rows, scores = self.index.search(vectors, k, allowed=allowed, **self.index_params)
        scales: list[ScoreScale | None] = [None] * len(rows)
        if self.reference is not None:
            scales = reference_scales(vectors @ self.reference.T)
        # Approximate indexes pad lists they could not fill with row -1.
        return [
            Ranking(r[r >= 0], s[r >= 0], scale)
            for r, s, scale in zip(rows, scores, scales, strict=True)
        ]


@dataclass
class LexicalRetriever:
    """BM25 over the collection's lexical index."""

    index: LexicalIndex
    name: str = "bm25"
    filters: DocumentFilters | None = None

    def retrieve(
        self, queries: Sequence[str], k: int, where: Filter | None = None
    ) -> list[Ranking]:
        allowed = allowed_documents(self.filters, where)
        found, ceilings = self.index.search_with_ceilings(queries, k, allowed)
        return [
            Ranking(r, s, ScoreScale(0.0, float(ceiling)) if ceiling > 0 else None)
            for (r, s), ceiling in zip(found, ceilings, strict=True)
        ]


@dataclass
class SparseRetriever:
    """A learned sparse model (SPLADE): the queries' term weights against the sparse index."""

    index: SparseIndex
    encoder: SparseTextEncoder
    name: str = "splade"
    # Vectors (documents × terms) of the reference documents (see DenseRetriever.reference).
    reference: csr_matrix | None = None
    filters: DocumentFilters | None = None

    def retrieve(
        self, queries: Sequence[str], k: int, where: Filter | None = None
    ) -> list[Ranking]:
        allowed = allowed_documents(self.filters, where)
        vectors = self.encoder.encode_queries(queries)
        scales: list[ScoreScale | None] = [None] * vectors.shape[0]
        if self.reference is not None:
            scales = reference_scales((vectors @ self.reference.T).toarray())
        return [
            Ranking(r, s, scale)
            for (r, s), scale in zip(self.index.search(vectors, k, allowed), scales, strict=True)
        ]


@dataclass
class MultiVectorRetriever:
    """Late interaction: the queries' token vectors gather candidates from the token index
    (each query token's nearest document tokens), which are then scored exactly by MaxSim over
    their stored token vectors. ``index_params``: ``nprobe``, inverted lists read per query
    token; ``per_token``, nearest tokens gathered per query token (default 32, at least k)."""

    index: MultiVectorIndex
    encoder: LateInteractionEncoder
    index_params: dict[str, int] = field(default_factory=dict)
    reference: TokenVectors | None = None  # the documents that calibrate scores
    name: str = "multivector"

    def retrieve(
        self, queries: Sequence[str], k: int, where: Filter | None = None
    ) -> list[Ranking]:
        if where is not None:
            raise InputError(NO_MULTIVECTOR_FILTERS)
        vectors = self.encoder.encode_queries(queries)
        per_token, nprobe = token_search_settings(self.index_params, k)
        found = self.index.search(vectors, k, per_token, nprobe)
        scales = maxsim_scales(vectors, self.reference)
        return [Ranking(r, s, scale) for (r, s), scale in zip(found, scales, strict=True)]


def allowed_documents(filters: DocumentFilters | None, where: Filter | None) -> np.ndarray | None:
    """``where`` as a boolean per document row of the collection ``filters`` reads."""
    if where is None:
        return None
    if filters is None:
        raise InputError("this retriever was opened without its collection's documents to filter")
    return filters.mask(where)


def open_retriever(
    collection: StoredCollection | ShardedStore,
    name: str,
    query_encoder: Callable[[], Encoder],
    index_params: dict[str, int] | None = None,
) -> Retriever:
    """The ``name`` retriever (dense, bm25, splade or multivector) over ``collection``'s own
    index (every shard's, merged, for a sharded collection); dense encodes queries with the
    encoder ``query_encoder`` gives (asked only for dense)."""
    from densekit.store.sharded import ShardedStore

    if isinstance(collection, ShardedStore):
        from densekit.retrieve.scatter_gather import open_sharded_retriever

        return open_sharded_retriever(collection, name, query_encoder, index_params)
    if name == "dense":
        vectors, groups = collection.dense_vectors()
        rows = collection.reference_documents(REFERENCE_DOCUMENTS)
        reference = vectors.take(groups.passages_of(rows))  # every passage of those documents
        if collection.adapter is not None and collection.adapter.maps_documents:
            reference = collection.adapter.documents(reference)  # as the index holds them
        return DenseRetriever(
            collection.dense_index,
            query_encoder(),
            dict(index_params or {}),
            reference=reference,
            filters=collection.filters,
        )
    if name == "bm25":
        return LexicalRetriever(collection.lexical_index, filters=collection.filters)
    if name == "multivector":
        return MultiVectorRetriever(
            collection.multivector_index,
            collection.multivector_encoder,
            dict(index_params or {}),
            collection.multivector_index.tokens.take(
                collection.reference_documents(REFERENCE_TOKEN_DOCUMENTS)
            ).dequantised(),
        )
    if name == "splade":
        index = collection.sparse_index
        reference = index.document_rows(collection.reference_documents(REFERENCE_DOCUMENTS))
        return SparseRetriever(
            index, collection.sparse_encoder, reference=reference, filters=collection.filters
        )
    raise CollectionError(f"{collection.directory}: no retriever named {name!r}")
