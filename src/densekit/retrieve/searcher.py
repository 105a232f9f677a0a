"""Search a collection by retriever name or by pipeline: both run as one pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from densekit.corpus.filters import Filter, parse_filter
from densekit.errors import CollectionError, InputError
from densekit.retrieve.fusion import FusionConfig
from densekit.retrieve.pipeline import Pipeline, builtin_pipeline
from densekit.retrieve.pipeline_runner import PipelineRunner
from densekit.retrieve.ranking import Hit, Ranking, ScoreScale
from densekit.store.document_filters import check_filter

if TYPE_CHECKING:
    from densekit.encode import Encoder
    from densekit.store.collection import StoredCollection


@dataclass(frozen=True)
class ListWeight:
    """What one candidate list counted for in one query's fusion.

    ``weight``: the fusion's weight for the list (None for RRF, which weighs ranks alike);
    ``share``: how much of the fused score the list could move (shares sum to 1 over the
    lists; see :meth:`FusionConfig.shares`); ``scale``: the list's calibration for the query.
    """

    retriever: str
    candidates: int
    weight: float | None
    share: float
    scale: ScoreScale | None


class Searcher:
    """Ranks a collection's documents for queries, with a pipeline: the one given, or the one
    a retriever name stands for (default: the collection's own, with its stored fusion).

    Made by :meth:`densekit.retrieve.Collection.searcher`, which supplies the query encoder.
    """

    def __init__(
        self,
        collection: StoredCollection,
        query_encoder: Callable[[], Encoder],
        retriever: str | None = None,
        fusion: FusionConfig | None = None,
        index_params: dict[str, int] | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        if not callable(query_encoder):
            raise TypeError(
                "Searcher(stored, query_encoder, retriever, ...) takes a function giving the "
                "query encoder; Collection.searcher(retriever, ...) makes one with the "
                "collection's own"
            )
        self.collection = collection
        self.index_params = dict(index_params or {})
        self.retriever: str | None = None
        if pipeline is not None:
            if retriever is not None or fusion is not None:
                raise InputError(
                    "a pipeline names its own retrievers and fusion; drop --retriever/--fusion "
                    "or the pipeline"
                )
        else:
            self.retriever = retriever or collection.manifest.retriever
            stored = FusionConfig.stored(collection.manifest.fusion)
            pipeline = builtin_pipeline(self.retriever, fusion or stored)  # refuses unknown names
            self._check_supported(self.retriever)
        self.pipeline = pipeline
        self.runner = PipelineRunner(collection, pipeline, query_encoder, self.index_params)

    def _check_supported(self, retriever: str) -> None:
        supported = self.collection.retrievers
        if retriever not in supported:
            hints = {"splade": "--sparse splade-tiny", "multivector": "--multivector MODEL"}
            hint = hints.get(retriever, f"--retriever {retriever}")
            raise CollectionError(
                f"{self.collection.directory}: cannot search with {retriever!r}; this "
                f"collection supports {', '.join(supported)}. Rebuild it with {hint} to add it"
            )

    @property
    def fusion(self) -> FusionConfig | None:
        """How the pipeline's candidate lists combine (None for a single list)."""
        return self.pipeline.fused

    @property
    def uses_dense_model(self) -> bool:
        """Whether queries go through the collection's dense model."""
        return any(stage.retriever == "dense" for stage in self.pipeline.candidates)

    @property
    def name(self) -> str:
        """What ranks: the retriever, or the pipeline by name."""
        if self.retriever is not None:
            return self.retriever
        return f"pipeline {self.pipeline.name}".strip()

    def rank(
        self, queries: Sequence[str], k: int, where: str | Filter | None = None
    ) -> list[Ranking]:
        """Each query's best ``k`` rows; ``where`` (a filter, see :mod:`densekit.corpus.filters`)
        limits every candidate stage to the documents it matches."""
        _check_queries(queries, k)
        return self.runner.rank(queries, k, self.checked_filter(where))

    def search(
        self, queries: Sequence[str], k: int, where: str | Filter | None = None
    ) -> list[list[Hit]]:
        """Rankings with document ids, titles and texts, for display and for run files."""
        return self._hits(self.rank(queries, k, where))

    def explain(
        self, queries: Sequence[str], k: int, where: str | Filter | None = None
    ) -> list[list[ListWeight]]:
        """For each query, how its candidate lists were weighed (one list: share 1)."""
        _check_queries(queries, k)
        candidates = self.runner.candidates(queries, k, self.checked_filter(where))
        return [self._weighed(lists) for lists in candidates]

    def search_explained(
        self, queries: Sequence[str], k: int, where: str | Filter | None = None
    ) -> tuple[list[list[Hit]], list[list[ListWeight]]]:
        """:meth:`search` and :meth:`explain` from one run of the candidate stages."""
        _check_queries(queries, k)
        candidates = self.runner.candidates(queries, k, self.checked_filter(where))
        rankings = self.runner.rank_candidates(queries, candidates, k)
        return self._hits(rankings), [self._weighed(lists) for lists in candidates]

    def checked_filter(self, where: str | Filter | None) -> Filter | None:
        """``where`` parsed and checked against the collection's documents (a field none has,
        or a value of a type its field never holds, is refused before any search runs)."""
        if where is None:
            return None
        parsed = parse_filter(where)
        check_filter(parsed, self.collection.document_filters)
        return parsed

    def _hits(self, rankings: Sequence[Ranking]) -> list[list[Hit]]:
        hits = []
        for ranking in rankings:
            documents = self.collection.documents.get_rows(ranking.rows.tolist())
            hits.append(
                [
                    Hit(doc.id, float(score), rank, doc.title, doc.text, doc.metadata)
                    for rank, (doc, score) in enumerate(
                        zip(documents, ranking.scores, strict=True), 1
                    )
                ]
            )
        return hits

    def _weighed(self, lists: Sequence[Ranking]) -> list[ListWeight]:
        names, fusion = self.runner.list_names, self.fusion
        shares = fusion.shares(lists, names) if fusion is not None else [1.0]
        weights: Sequence[float | None] = [None] * len(lists)
        if fusion is not None and fusion.method != "rrf":
            weights = fusion.weights_for(len(lists), names, lists)
        return [
            ListWeight(name, len(ranking), weight, share, ranking.scale)
            for name, ranking, weight, share in zip(names, lists, weights, shares, strict=True)
        ]


def _check_queries(queries: Sequence[str], k: int) -> None:
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    for number, query in enumerate(queries, 1):
        if not isinstance(query, str) or not query.strip():
            raise InputError(f"query {number} is empty; give some text to search for")
