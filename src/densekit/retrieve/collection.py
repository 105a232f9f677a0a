"""The collection users search: a stored collection and the encoder its queries go through.

The store opens the directory and knows nothing of search; this object adds the query side.
Its query encoder is fixed when it is made: the collection's own model (wrapped by the
collection's adapter, if one is stored), a given encoder of the same model, or query vectors
made elsewhere. :meth:`Collection.with_encoder` gives another view of the same snapshot.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from densekit.retrieve.fusion import FusionConfig
from densekit.store.build_options import BuildOptions, fusion_table
from densekit.store.builder import build_collection as build_stored
from densekit.store.collection import StoredCollection
from densekit.store.collection_info import collection_info
from densekit.store.encoding_run import PartitionEncoder
from densekit.store.sharded import ShardedStore, open_store
from densekit.store.sharded_build import build_sharded

if TYPE_CHECKING:
    from densekit.corpus.filters import Filter
    from densekit.encode import Encoder
    from densekit.files.vectors import VectorTable
    from densekit.retrieve.pipeline import Pipeline
    from densekit.retrieve.ranking import Hit
    from densekit.retrieve.searcher import Searcher
    from densekit.store.documents import DocumentStore
    from densekit.store.manifest import Manifest


# Methods that swapped a collection's query encoder in place; a view with another encoder
# replaces them.
_VIEWS_INSTEAD = {
    "use_encoder": "with_encoder(encoder)",
    "use_query_vectors": "with_query_vectors(table, queries)",
}


class Collection:
    """A collection opened for search: ``Collection(directory).search("query", k=5)``.

    ``encoder``: encode queries with this model instead of loading the collection's own (it must
    be the same model: its fingerprint is checked).
    """

    def __init__(
        self,
        source: str | Path | StoredCollection | ShardedStore,
        *,
        encoder: Encoder | None = None,
    ) -> None:
        opened = not isinstance(source, StoredCollection | ShardedStore)
        self.stored = open_store(source) if opened else source
        try:
            self._given = self.stored.check_encoder(encoder) if encoder is not None else None
        except BaseException:
            if opened:  # no one else holds it
                self.stored.close()
            raise
        self._query_encoder: Encoder | None = None
        self._searchers: dict[tuple[object, ...], Searcher] = {}
        # Concurrent first searches of one setting (a server's requests on one snapshot) make
        # one searcher, so its rerankers load once.
        self._searchers_lock = threading.Lock()

    # What the store holds, at hand.
    @property
    def directory(self) -> Path:
        return self.stored.directory

    @property
    def manifest(self) -> Manifest:
        return self.stored.manifest

    @property
    def documents(self) -> DocumentStore:
        return self.stored.documents

    @property
    def retrievers(self) -> list[str]:
        return self.stored.retrievers

    @property
    def doc_ids(self) -> list[str]:
        return self.stored.doc_ids

    @property
    def row_ids(self) -> list[str | None]:
        return self.stored.row_ids

    def __len__(self) -> int:
        return len(self.stored)

    def __getattr__(self, name: str) -> Any:
        # The snapshot's other parts (indexes, vectors, the adapter) read through to the store.
        if name == "stored":  # not set yet: construction failed
            raise AttributeError(name)
        if name in _VIEWS_INSTEAD:
            raise AttributeError(
                f"a Collection's query encoder is fixed; {_VIEWS_INSTEAD[name]} returns a view "
                "of the same snapshot that searches that way"
            )
        try:
            return getattr(self.stored, name)
        except AttributeError:
            raise AttributeError(f"'Collection' object has no attribute {name!r}") from None

    def __repr__(self) -> str:
        shown = repr(self.stored)
        return "Collection(" + shown.split("(", 1)[1]

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def info(self) -> dict[str, Any]:
        """What the collection holds, for `densekit info` and for people."""
        return collection_info(self.stored)

    def close(self) -> None:
        """Close the snapshot, for every view of it (:meth:`with_encoder`)."""
        self.stored.close()

    # The query side.
    @property
    def model(self) -> Encoder:
        """The collection's model as this view runs it: the given encoder, or the model loaded
        from the manifest (what document vectors come from; no adapter)."""
        return self._given if self._given is not None else self.stored.encoder

    @property
    def encoder(self) -> Encoder:
        """What encodes this view's queries: :attr:`model`, wrapped by the collection's
        adapter when one is stored."""
        if self._query_encoder is None:
            base = self.model
            adapter = self.stored.adapter
            if adapter is None:
                self._query_encoder = base
            else:
                from densekit.encode.adapters.wrapper import AdaptedEncoder

                self._query_encoder = AdaptedEncoder(base, adapter)
        return self._query_encoder

    def with_encoder(self, encoder: Encoder) -> Collection:
        """This snapshot, with queries encoded by ``encoder`` (the collection's model, e.g. on
        another device or behind a server's batching); another model is refused.

        The views share the opened snapshot: closing any of them closes it for all."""
        return Collection(self.stored, encoder=encoder)

    def with_query_vectors(self, table: VectorTable, queries: Mapping[str, str]) -> Collection:
        """This snapshot, searching ``queries`` (id → text) with their vectors in ``table``
        (made elsewhere by the collection's model) instead of encoding them."""
        return Collection(self.stored, encoder=self.stored.given_query_vectors(table, queries))

    def query_vectors(self, queries: Sequence[str]) -> np.ndarray:
        """The queries' vectors as the dense index expects them: encoded, then adapted."""
        return self.encoder.encode_queries(queries)

    def searcher(
        self,
        retriever: str | None = None,
        *,
        fusion: FusionConfig | None = None,
        pipeline: Pipeline | None = None,
        index_params: Mapping[str, int] | None = None,
    ) -> Searcher:
        """A searcher for one setting, kept: a pipeline's rerankers load once, not per search."""
        from densekit.retrieve.searcher import Searcher

        params = dict(index_params or {})
        key = (retriever, fusion, pipeline, tuple(sorted(params.items())))
        with self._searchers_lock:
            if key not in self._searchers:
                self._searchers[key] = Searcher(
                    self.stored, lambda: self.encoder, retriever, fusion, params, pipeline
                )
            return self._searchers[key]

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        retriever: str | None = None,
        pipeline: Pipeline | None = None,
        where: str | Filter | None = None,
        **index_params: int,
    ) -> list[Hit]:
        """The top ``k`` documents for ``query``, with their ids, scores, titles, texts and
        metadata.

        ``pipeline`` runs candidate, fusion and rerank stages instead of one ``retriever``.
        ``where`` searches only the documents whose metadata match it, e.g.
        ``"year >= 2020 and topic in ('ml', 'ir')"`` (see :mod:`densekit.corpus.filters`).
        ``index_params`` tune an approximate index per search: ``efSearch``, ``nprobe``,
        ``rescore`` (candidate multiplier).
        """
        return self.search_many(
            [query], k, retriever=retriever, pipeline=pipeline, where=where, **index_params
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        retriever: str | None = None,
        pipeline: Pipeline | None = None,
        where: str | Filter | None = None,
        **index_params: int,
    ) -> list[list[Hit]]:
        searcher = self.searcher(retriever, pipeline=pipeline, index_params=index_params)
        return searcher.search(queries, k, where)


def open_collection(directory: str | Path, *, encoder: Encoder | None = None) -> Collection:
    """Open the collection at ``directory`` for search."""
    return Collection(directory, encoder=encoder)


def build_collection(
    corpus: str | Path,
    out: str | Path,
    options: BuildOptions | None = None,
    *,
    overwrite: bool = False,
    encoder: Encoder | None = None,
    shards: int | None = None,
    remote: PartitionEncoder | None = None,
) -> Collection:
    """Build a collection from ``corpus`` into ``out`` (see
    :func:`densekit.store.build_collection`; with ``shards``, N shards routed by document id:
    :func:`densekit.store.sharded_build.build_sharded`) and open it for search, with
    ``encoder`` for the queries when one was given for the documents. ``remote``: encode on
    these workers (:func:`densekit.distributed.ray_encoding`)."""
    options = options or BuildOptions()
    # Checked before any work, and recorded in full: the manifest names the default search's
    # fusion, not "the default" (which may change).
    fusion = FusionConfig.stored(fusion_table(options.fusion), source="BuildOptions.fusion")
    options = dataclasses.replace(options, fusion=fusion.to_dict())
    if shards is not None:
        stored: StoredCollection | ShardedStore = build_sharded(
            corpus,
            out,
            options,
            shards=shards,
            overwrite=overwrite,
            encoder=encoder,
            remote=remote,
        )
    else:
        stored = build_stored(
            corpus, out, options, overwrite=overwrite, encoder=encoder, remote=remote
        )
    dense = stored.manifest.encoder is not None
    return Collection(stored, encoder=encoder if dense else None)
