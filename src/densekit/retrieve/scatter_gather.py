"""Searching a sharded collection: every shard is asked for its top k, the lists are merged.

Queries are encoded (or analysed) once, here; each shard only searches its index
(:class:`ShardSearch`): in threads here (:class:`Shards`), or each in its own actor on a Ray
cluster (:mod:`densekit.distributed.shard_actors`, attached with :func:`use_shards`). Merged
lists are the
unsharded collection's: exact indexes score a document the same in its shard as in one index of
everything, BM25 because every shard was scored with the collection's statistics. Calibration
uses what an unsharded collection would: the same reference documents, BM25 ceilings from the
summed document frequencies.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from densekit.errors import CollectionError, InputError
from densekit.index.bm25_statistics import bm25_ceilings
from densekit.index.late_interaction import (
    NO_MULTIVECTOR_FILTERS,
    TokenVectors,
    token_search_settings,
)
from densekit.retrieve.ranking import (
    REFERENCE_DOCUMENTS,
    REFERENCE_TOKEN_DOCUMENTS,
    Ranking,
    ScoreScale,
    maxsim_scales,
    reference_scales,
)
from densekit.store.collection import StoredCollection

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

    from densekit.corpus.filters import Filter
    from densekit.encode import Encoder
    from densekit.encode.late_interaction import LateInteractionEncoder
    from densekit.store.sharded import ShardedStore

Found = list[tuple[np.ndarray, np.ndarray]]  # per query: (rows, scores), best first
T = TypeVar("T")


class ShardUnavailableError(CollectionError):
    """A shard did not answer (its process died and did not come back in time): a search
    never silently leaves a shard out."""


class ShardSearch:
    """One shard's side of a search: its top ``k`` for queries encoded or analysed elsewhere,
    in its own rows. Holds the shard's indexes open; a cluster runs one per shard."""

    def __init__(self, shard: StoredCollection | str | Path) -> None:
        self.stored = shard if isinstance(shard, StoredCollection) else StoredCollection(shard)

    def dense(
        self, vectors: np.ndarray, k: int, params: dict[str, int], where: Filter | None = None
    ) -> Found:
        allowed = self._allowed(where)
        rows, scores = self.stored.dense_index.search(vectors, k, allowed=allowed, **params)
        # Approximate indexes pad lists they could not fill with row -1.
        return [(r[r >= 0].astype(np.int64), s[r >= 0]) for r, s in zip(rows, scores, strict=True)]

    def lexical(
        self, tokens: list[list[str]], k: int, where: Filter | None = None
    ) -> tuple[Found, list[np.ndarray], int]:
        """Top ``k`` by BM25, with the shard's document frequencies of the query terms and
        its document count (the collection's ceilings are computed from their sums)."""
        index = self.stored.lexical_index
        found = index.search_terms(tokens, k, self._allowed(where))
        return found, index.frequencies(tokens), index.documents

    def sparse(self, vectors: csr_matrix, k: int, where: Filter | None = None) -> Found:
        return self.stored.sparse_index.search(vectors, k, self._allowed(where))

    def _allowed(self, where: Filter | None) -> np.ndarray | None:
        # Checked once for the whole collection (a field one shard lacks is not an error).
        return None if where is None else self.stored.filters.mask(where, check=False)

    def multivector(self, queries: list[np.ndarray], k: int, params: dict[str, int]) -> Found:
        per_token, nprobe = token_search_settings(params, k)
        return self.stored.multivector_index.search(queries, k, per_token, nprobe)

    def maxsim(self, queries: list[np.ndarray], rows: list[np.ndarray]) -> list[np.ndarray]:
        """Each query's MaxSim with the documents at its ``rows`` (a rerank stage's)."""
        tokens = self.stored.multivector_index.tokens
        return [tokens.maxsim(query, r) for query, r in zip(queries, rows, strict=True)]

    def multivector_reference(self, rows: np.ndarray) -> list[np.ndarray]:
        """The int8 token vectors of the documents at ``rows``, one matrix each."""
        taken = self.stored.multivector_index.tokens.take(rows)
        return [taken.codes[start:end] for start, end in itertools.pairwise(taken.offsets)]

    def dense_reference(self, rows: np.ndarray) -> list[np.ndarray]:
        """The vectors of the documents at ``rows``: per document, every passage's."""
        vectors, groups = self.stored.dense_vectors()
        return [vectors.take(groups.passages_of(np.array([row]))) for row in rows]

    def sparse_reference(self, rows: np.ndarray) -> list[csr_matrix]:
        """The sparse vectors of the documents at ``rows``, one row each."""
        stacked = self.stored.sparse_index.document_rows(rows)
        return [stacked[position] for position in range(stacked.shape[0])]


class ShardExecutor(Protocol):
    """Asks every shard's :class:`ShardSearch` the same thing at once."""

    def ask(self, method: str, *args: Any) -> list[Any]:
        """``ShardSearch.<method>(*args)`` of every shard; answers in shard order."""
        ...

    def ask_each(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``ShardSearch.<method>(*args[n])`` of shard n; answers in shard order."""
        ...


@dataclass
class Shards:
    """The shards of one collection, searched side by side in this process's threads."""

    searches: list[ShardSearch]
    pool: Executor = field(default_factory=lambda: ThreadPoolExecutor(thread_name_prefix="shard"))

    def ask(self, method: str, *args: Any) -> list[Any]:
        return self.ask_each(method, [args] * len(self.searches))

    def ask_each(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        calls = [getattr(search, method) for search in self.searches]
        return list(self.pool.map(lambda call, given: call(*given), calls, args))


def merge(found: Sequence[Found | None], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per query, the best ``k`` of every shard's list (shard n's in ``found[n]``; None for a
    shard left out of a partial answer), in global rows."""
    count = len(found)
    present = [(shard, lists) for shard, lists in enumerate(found) if lists is not None]
    merged = []
    for number in range(len(present[0][1]) if present else 0):
        parts = [(shard, lists[number]) for shard, lists in present]
        rows = np.concatenate([r.astype(np.int64) * count + shard for shard, (r, _) in parts])
        scores = np.concatenate([s for _, (_, s) in parts]).astype(np.float32)
        order = np.argsort(-scores, kind="stable")[:k]
        merged.append((rows[order], scores[order]))
    return merged


@dataclass
class ShardReport:
    """Which shards answered the searches of a :func:`partial_results` block."""

    shards: int = 0
    missing: set[int] = field(default_factory=set)

    @property
    def answered(self) -> list[int]:
        return [number for number in range(self.shards) if number not in self.missing]


_partial: ContextVar[ShardReport | None] = ContextVar("densekit_partial_results", default=None)


@contextmanager
def partial_results(allowed: bool = True) -> Iterator[ShardReport | None]:
    """Within the block (this thread's searches), a shard that does not answer is left out of
    the merged lists instead of failing the search; the report says which shards answered."""
    report = ShardReport() if allowed else None
    token = _partial.set(report)
    try:
        yield report
    finally:
        _partial.reset(token)


def partial_report() -> ShardReport | None:
    """The report of the :func:`partial_results` block around this call, if any: an executor
    records there the shards that did not answer (and answers None for them)."""
    return _partial.get()


# Executors attached to a store (shard actors on a cluster); without one, threads here.
_attached: weakref.WeakKeyDictionary[ShardedStore, ShardExecutor] = weakref.WeakKeyDictionary()


def use_shards(store: ShardedStore, executor: ShardExecutor | None) -> None:
    """Search ``store``'s shards with ``executor`` from now on (None: in threads again)."""
    if executor is None:
        _attached.pop(store, None)
    else:
        _attached[store] = executor


def shards_of(store: ShardedStore) -> ShardExecutor:
    return _attached.get(store) or Shards([ShardSearch(shard) for shard in store.shards])


@dataclass
class ShardedDenseRetriever:
    shards: ShardExecutor
    encoder: Encoder
    index_params: dict[str, int]
    reference: np.ndarray
    name: str = "dense"

    def retrieve(
        self, queries: Sequence[str], k: int, where: Filter | None = None
    ) -> list[Ranking]:
        vectors = self.encoder.encode_queries(queries)
        found = self.shards.ask("dense", vectors, k, self.index_params, where)
        scales = reference_scales(vectors @ self.reference.T)
        return [
            Ranking(rows, scores, scale)
            for (rows, scores), scale in zip(merge(found, k), scales, strict=True)
        ]


@dataclass
class ShardedLexicalRetriever:
    shards: ShardExecutor
    analyse: Callable[[Sequence[str]], list[list[str]]]
    weight: Callable[[str], float]
    name: str = "bm25"

    def retrieve(
        self, queries: Sequence[str], k: int, where: Filter | None = None
    ) -> list[Ranking]:
        tokens = self.analyse(queries)
        answers = self.shards.ask("lexical", tokens, k, where)
        present = [answer for answer in answers if answer is not None]
        frequencies = [
            np.sum([counts[number] for _, counts, _ in present], axis=0)
            for number in range(len(tokens))
        ]
        documents = sum(count for _, _, count in present)
        ceilings = bm25_ceilings(tokens, frequencies, documents, self.weight)
        merged = merge([answer[0] if answer else None for answer in answers], k)
        return [
            Ranking(rows, scores, ScoreScale(0.0, float(ceiling)) if ceiling > 0 else None)
            for (rows, scores), ceiling in zip(merged, ceilings, strict=True)
        ]


@dataclass
class ShardedSparseRetriever:
    shards: ShardExecutor
    encoder: Callable[[Sequence[str]], csr_matrix]
    reference: csr_matrix
    name: str = "splade"

    def retrieve(
        self, queries: Sequence[str], k: int, where: Filter | None = None
    ) -> list[Ranking]:
        vectors = self.encoder(queries)
        found = self.shards.ask("sparse", vectors, k, where)
        scales = reference_scales((vectors @ self.reference.T).toarray())
        return [
            Ranking(rows, scores, scale)
            for (rows, scores), scale in zip(merge(found, k), scales, strict=True)
        ]


@dataclass
class ShardedMultiVectorRetriever:
    shards: ShardExecutor
    encoder: LateInteractionEncoder
    index_params: dict[str, int]
    reference: TokenVectors
    name: str = "multivector"

    def retrieve(
        self, queries: Sequence[str], k: int, where: Filter | None = None
    ) -> list[Ranking]:
        if where is not None:
            raise InputError(NO_MULTIVECTOR_FILTERS)
        vectors = self.encoder.encode_queries(queries)
        found = self.shards.ask("multivector", vectors, k, self.index_params)
        scales = maxsim_scales(vectors, self.reference)
        return [
            Ranking(rows, scores, scale)
            for (rows, scores), scale in zip(merge(found, k), scales, strict=True)
        ]


def open_sharded_retriever(
    store: ShardedStore,
    name: str,
    query_encoder: Callable[[], Encoder],
    index_params: dict[str, int] | None = None,
) -> (
    ShardedDenseRetriever
    | ShardedLexicalRetriever
    | ShardedSparseRetriever
    | ShardedMultiVectorRetriever
):
    """The ``name`` retriever (dense, bm25, splade or multivector) over every shard of ``store``,
    searched by the executor attached to it (:func:`use_shards`) or in threads."""
    shards = shards_of(store)
    if name == "dense":
        reference = _reference(store, shards, "dense_reference", np.concatenate)
        return ShardedDenseRetriever(shards, query_encoder(), dict(index_params or {}), reference)
    if name == "bm25":
        first = store.shards[0].lexical_index
        return ShardedLexicalRetriever(shards, first.analyse, first.weight)
    if name == "splade":
        from scipy.sparse import vstack

        reference = _reference(store, shards, "sparse_reference", vstack)
        encoder = store.shards[0].sparse_encoder
        return ShardedSparseRetriever(shards, encoder.encode_queries, reference)
    if name == "multivector":
        tokens = _reference(
            store,
            shards,
            "multivector_reference",
            lambda codes: TokenVectors.from_codes(codes, store.manifest.multivector.dimension),
            REFERENCE_TOKEN_DOCUMENTS,
        ).dequantised()
        encoder = store.shards[0].multivector_encoder
        return ShardedMultiVectorRetriever(shards, encoder, dict(index_params or {}), tokens)
    raise CollectionError(f"{store.directory}: no retriever named {name!r}")


def _reference(
    store: ShardedStore,
    shards: ShardExecutor,
    method: str,
    stack: Callable[[list[T]], T],
    count: int = REFERENCE_DOCUMENTS,
) -> T:
    """The reference documents' vectors, in the order an unsharded collection holds them (so
    the means and spreads it calibrates with come out the same, bit for bit); one request to
    each shard."""
    chosen = store.reference_documents(count)  # (shard, row), in hash order
    rows: list[list[int]] = [[] for _ in store.shards]
    for shard, row in chosen:
        rows[shard].append(row)
    with partial_results(allowed=False):  # calibration needs every shard's documents
        answers = shards.ask_each(method, [(np.array(r, dtype=np.int64),) for r in rows])
    taken = [iter(answer) for answer in answers]
    return stack([next(taken[shard]) for shard, _ in chosen])
