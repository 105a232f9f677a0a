"""First-stage retrievers: queries in, ranked rows of the live documents out.

Every candidate stage of a pipeline is a :class:`Retriever`; a collection makes its own with
:func:`open_retriever`. A retriever reads an index and, where it needs one, an encoder for the
queries; it never changes either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from densekit.errors import CollectionError
from densekit.retrieve.ranking import Ranking

if TYPE_CHECKING:
    from densekit.encode import Encoder
    from densekit.encode.sparse import SparseTextEncoder
    from densekit.index import FlatIndex, LexicalIndex
    from densekit.index.ann import AnnIndex
    from densekit.index.sparse import SparseIndex
    from densekit.store.collection import StoredCollection


class Retriever(Protocol):
    """Ranks the live documents of one index for each query, best first."""

    name: str

    def retrieve(self, queries: Sequence[str], k: int) -> list[Ranking]: ...


@dataclass
class DenseRetriever:
    """Nearest neighbours of the encoded queries in a vector index; ``index_params`` tune an
    approximate index per search (``efSearch``, ``nprobe``, ``rescore``)."""

    index: FlatIndex | AnnIndex
    encoder: Encoder
    index_params: dict[str, int] = field(default_factory=dict)
    name: str = "dense"

    def retrieve(self, queries: Sequence[str], k: int) -> list[Ranking]:
        vectors = self.encoder.encode_queries(queries)
        rows, scores = self.index.search(vectors, k, **self.index_params)
        # Approximate indexes pad lists they could not fill with row -1.
        return [Ranking(r[r >= 0], s[r >= 0]) for r, s in zip(rows, scores, strict=True)]


@dataclass
class LexicalRetriever:
    """BM25 over the collection's lexical index."""

    index: LexicalIndex
    name: str = "bm25"

    def retrieve(self, queries: Sequence[str], k: int) -> list[Ranking]:
        return [Ranking(r, s) for r, s in self.index.search(queries, k)]


@dataclass
class SparseRetriever:
    """A learned sparse model (SPLADE): the queries' term weights against the sparse index."""

    index: SparseIndex
    encoder: SparseTextEncoder
    name: str = "splade"

    def retrieve(self, queries: Sequence[str], k: int) -> list[Ranking]:
        vectors = self.encoder.encode_queries(queries)
        return [Ranking(r, s) for r, s in self.index.search(vectors, k)]


def open_retriever(
    collection: StoredCollection,
    name: str,
    query_encoder: Callable[[], Encoder],
    index_params: dict[str, int] | None = None,
) -> Retriever:
    """The ``name`` retriever (dense, bm25 or splade) over ``collection``'s own index; dense
    encodes queries with the encoder ``query_encoder`` gives (asked only for dense)."""
    if name == "dense":
        return DenseRetriever(collection.dense_index, query_encoder(), dict(index_params or {}))
    if name == "bm25":
        return LexicalRetriever(collection.lexical_index)
    if name == "splade":
        return SparseRetriever(collection.sparse_index, collection.sparse_encoder)
    raise CollectionError(f"{collection.directory}: no retriever named {name!r}")
