"""Run queries against a collection with a dense, BM25 or hybrid retriever."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from densekit.errors import CollectionError, InputError
from densekit.retrieve.fusion import FusionConfig, fuse
from densekit.retrieve.ranking import Hit, Ranking

if TYPE_CHECKING:
    from densekit.encode import Encoder
    from densekit.retrieve.pipeline import Pipeline
    from densekit.retrieve.pipeline_runner import PipelineRunner
    from densekit.store.collection import Collection

RetrieverName = Literal["dense", "bm25", "hybrid", "splade"]
RETRIEVER_NAMES: tuple[RetrieverName, ...] = ("dense", "bm25", "hybrid", "splade")


class Searcher:
    """Ranks collection rows for queries; ``retriever`` defaults to the collection's own."""

    def __init__(
        self,
        collection: Collection,
        retriever: str | None = None,
        fusion: FusionConfig | None = None,
        model: str | Encoder | None = None,
        index_params: dict[str, int] | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.collection = collection
        self.index_params = dict(index_params or {})
        self.runner: PipelineRunner | None = None
        if pipeline is not None:
            from densekit.retrieve.pipeline_runner import PipelineRunner

            if retriever is not None or fusion is not None:
                raise InputError(
                    "a pipeline names its own retrievers and fusion; drop --retriever/--fusion "
                    "or the pipeline"
                )
            self.runner = PipelineRunner(collection, pipeline, self.index_params)
        self.retriever = retriever or collection.manifest.retriever
        if self.runner is None:  # a runner has checked its own stages against the collection
            self._check_retriever()
        self.fusion = fusion or FusionConfig.from_dict(collection.manifest.fusion)
        if model is not None:  # checked even for BM25: naming the wrong model is always a mistake
            from densekit.encode import load_encoder

            collection.use_encoder(load_encoder(model) if isinstance(model, str) else model)

    def _check_retriever(self) -> None:
        if self.retriever not in RETRIEVER_NAMES:
            raise InputError(
                f"unknown retriever {self.retriever!r}; choose one of {', '.join(RETRIEVER_NAMES)}"
            )
        supported = self.collection.retrievers
        if self.retriever not in supported:
            hint = (
                "--sparse splade-tiny"
                if self.retriever == "splade"
                else f"--retriever {self.retriever}"
            )
            raise CollectionError(
                f"{self.collection.directory}: cannot search with {self.retriever!r}; this "
                f"collection supports {', '.join(supported)}. Rebuild it with {hint} to add it"
            )

    @property
    def uses_dense_model(self) -> bool:
        """Whether queries go through the collection's dense model."""
        if self.runner is not None:
            return any(s.retriever == "dense" for s in self.runner.pipeline.candidates)
        return self.retriever in ("dense", "hybrid")

    @property
    def name(self) -> str:
        """What ranks: the retriever, or the pipeline by name."""
        if self.runner is not None:
            return f"pipeline {self.runner.pipeline.name}".strip()
        return self.retriever

    def rank(self, queries: Sequence[str], k: int) -> list[Ranking]:
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        for number, query in enumerate(queries, 1):
            if not isinstance(query, str) or not query.strip():
                raise InputError(f"query {number} is empty; give some text to search for")
        if self.runner is not None:
            return self.runner.rank(queries, k)
        if self.retriever == "dense":
            return self._dense(queries, k)
        if self.retriever == "bm25":
            return self._lexical(queries, k)
        if self.retriever == "splade":
            return sparse_rankings(self.collection, queries, k)
        depth = max(k, self.fusion.depth)
        pairs = zip(self._dense(queries, depth), self._lexical(queries, depth), strict=True)
        return [fuse(dense, lexical, self.fusion).top(k) for dense, lexical in pairs]

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """Rankings with document ids, titles and texts, for display and for run files."""
        hits = []
        for ranking in self.rank(queries, k):
            documents = self.collection.documents.get_rows(ranking.rows.tolist())
            hits.append(
                [
                    Hit(doc.id, float(score), rank, doc.title, doc.text)
                    for rank, (doc, score) in enumerate(
                        zip(documents, ranking.scores, strict=True), 1
                    )
                ]
            )
        return hits

    def _dense(self, queries: Sequence[str], k: int) -> list[Ranking]:
        return dense_rankings(self.collection, queries, k, self.index_params)

    def _lexical(self, queries: Sequence[str], k: int) -> list[Ranking]:
        return lexical_rankings(self.collection, queries, k)


def dense_rankings(
    collection: Collection, queries: Sequence[str], k: int, index_params: dict[str, int]
) -> list[Ranking]:
    vectors = collection.query_vectors(queries)
    rows, scores = collection.dense_index.search(vectors, k, **index_params)
    # Approximate indexes pad lists they could not fill with row -1.
    return [Ranking(r[r >= 0], s[r >= 0]) for r, s in zip(rows, scores, strict=True)]


def lexical_rankings(collection: Collection, queries: Sequence[str], k: int) -> list[Ranking]:
    return [Ranking(r, s) for r, s in collection.lexical_index.search(queries, k)]


def sparse_rankings(collection: Collection, queries: Sequence[str], k: int) -> list[Ranking]:
    vectors = collection.sparse_encoder.encode_queries(queries)
    return [Ranking(r, s) for r, s in collection.sparse_index.search(vectors, k)]
