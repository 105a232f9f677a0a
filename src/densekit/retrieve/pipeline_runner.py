"""Run a :class:`Pipeline` against a collection: candidates, fusion, reranking, with costs.

The one way a collection is searched: every retriever name is a built-in pipeline.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from densekit.errors import CollectionError
from densekit.retrieve.fusion import blend
from densekit.retrieve.pipeline import Pipeline, RerankStage
from densekit.retrieve.ranking import Ranking
from densekit.retrieve.rerankers import ListReranker, Reranker, load_reranker
from densekit.retrieve.retrievers import Retriever, open_retriever
from densekit.retrieve.token_rescoring import TokenRescorer

if TYPE_CHECKING:
    from densekit.corpus.filters import Filter
    from densekit.encode import Encoder
    from densekit.store.collection import StoredCollection


@dataclass
class StageCost:
    """Time a stage took over every query run so far, and for rerankers, the pairs scored."""

    stage: str
    seconds: float = 0.0
    queries: int = 0
    passages: int = 0

    def to_dict(self) -> dict[str, float | int | str | None]:
        return {
            "stage": self.stage,
            "seconds": round(self.seconds, 3),
            "ms_per_query": round(1000 * self.seconds / self.queries, 2) if self.queries else None,
            "passages": self.passages,
            "passages_per_second": round(self.passages / self.seconds, 1)
            if self.passages and self.seconds
            else None,
        }


@dataclass
class PipelineRunner:
    """A pipeline bound to a collection: rerankers loaded once, retrievers opened at the first
    search.

    ``query_encoder`` gives the encoder of dense queries (asked only when a stage is dense).
    """

    collection: StoredCollection
    pipeline: Pipeline
    query_encoder: Callable[[], Encoder]
    index_params: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        available = self.collection.retrievers
        for i, stage in enumerate(self.pipeline.candidates, 1):
            if stage.retriever not in available:
                raise CollectionError(
                    f"candidates[{i}]: {self.collection.directory} has no {stage.retriever!r} "
                    f"index (it supports {', '.join(available)}); rebuild it with one, or drop "
                    "the stage"
                )
        self._retrievers: list[Retriever] | None = None
        self._opening = threading.Lock()
        self.rerankers: list[Reranker | ListReranker | TokenRescorer] = [
            TokenRescorer(self.collection, f"rerank[{i}]")
            if stage.kind == "multivector"
            else load_reranker(stage, f"rerank[{i}]")
            for i, stage in enumerate(self.pipeline.rerank, 1)
        ]
        self.costs = [StageCost(s.retriever) for s in self.pipeline.candidates]
        self.costs += [
            StageCost(f"rerank[{i}] {s.model}") for i, s in enumerate(self.pipeline.rerank, 1)
        ]

    @property
    def retrievers(self) -> list[Retriever]:
        """The candidate stages' retrievers, opened at the first search: a query model loads
        when queries need it, so a refused query or an unused searcher costs no model load."""
        if self._retrievers is None:
            with self._opening:  # concurrent first searches open them once
                if self._retrievers is None:
                    self._retrievers = [
                        open_retriever(
                            self.collection, stage.retriever, self.query_encoder, self.index_params
                        )
                        for stage in self.pipeline.candidates
                    ]
        return self._retrievers

    @property
    def list_names(self) -> list[str]:
        """The retriever of each candidate stage, in order."""
        return [stage.retriever for stage in self.pipeline.candidates]

    def candidates(
        self, queries: Sequence[str], k: int, where: Filter | None = None
    ) -> list[list[Ranking]]:
        """For each query, the candidate stages' lists before fusion, in stage order; with
        ``where``, every stage searches only the documents it matches (rerankers then see no
        others)."""
        lists = [
            self._candidates(i, queries, k, where) for i in range(len(self.pipeline.candidates))
        ]
        return [list(per_query) for per_query in zip(*lists, strict=True)]

    def rank(self, queries: Sequence[str], k: int, where: Filter | None = None) -> list[Ranking]:
        return self.rank_candidates(queries, self.candidates(queries, k, where), k)

    def rank_candidates(
        self, queries: Sequence[str], candidates: Sequence[Sequence[Ranking]], k: int
    ) -> list[Ranking]:
        """Fuse and rerank each query's candidate lists (from :meth:`candidates`)."""
        fusion = self.pipeline.fused
        if fusion is None:
            rankings = [lists[0] for lists in candidates]
        else:
            names = self.list_names
            rankings = [fusion.fuse(lists, names) for lists in candidates]
        offset = len(self.pipeline.candidates)
        for number, (stage, reranker) in enumerate(
            zip(self.pipeline.rerank, self.rerankers, strict=True)
        ):
            rankings = self._rerank(stage, reranker, self.costs[offset + number], queries, rankings)
        return [ranking.top(k) for ranking in rankings]

    def _candidates(
        self, index: int, queries: Sequence[str], k: int, where: Filter | None
    ) -> list[Ranking]:
        stage, cost = self.pipeline.candidates[index], self.costs[index]
        started = time.perf_counter()
        depth = stage.depth(k, self.pipeline.fused)
        rankings = self.retrievers[index].retrieve(queries, depth, where)
        cost.seconds += time.perf_counter() - started
        cost.queries += len(queries)
        return rankings

    def _rerank(
        self,
        stage: RerankStage,
        reranker: Reranker | ListReranker | TokenRescorer,
        cost: StageCost,
        queries: Sequence[str],
        rankings: list[Ranking],
    ) -> list[Ranking]:
        """Rescore each query's top ``top_n``; the rest keep their order, below every one of
        them (a reranker's scores are not comparable with the first stages')."""
        started = time.perf_counter()
        heads = [ranking.top(stage.top_n) for ranking in rankings]
        short = min((len(head) for head in heads), default=0)
        if short < stage.top_n and not any(stage.model in note for note in self.notes):
            self.notes.append(
                f"{stage.model}: top_n {stage.top_n} is more than the {short} candidates some "
                f"queries have; those rerank all their candidates"
            )
        scored = self._score_heads(reranker, queries, heads)
        reranked = []
        for head, ranking, head_scores in zip(heads, rankings, scored, strict=True):
            if stage.weight < 1:
                head_scores = blend(head_scores, head.scores, stage.weight)
            order = np.argsort(-head_scores, kind="stable")
            tail = ranking.rows[len(head) :]
            floor = float(head_scores.min()) if len(head_scores) else 0.0
            reranked.append(
                Ranking(
                    np.concatenate([head.rows[order], tail]),
                    np.concatenate(
                        [head_scores[order], floor - 1.0 - np.arange(len(tail), dtype=np.float32)]
                    ).astype(np.float32),
                )
            )
        cost.seconds += time.perf_counter() - started
        cost.queries += len(queries)
        cost.passages += sum(len(head) for head in heads)
        return reranked

    def _score_heads(
        self,
        reranker: Reranker | ListReranker | TokenRescorer,
        queries: Sequence[str],
        heads: list[Ranking],
    ) -> list[np.ndarray]:
        """The reranker's score of each query's head rows, in their order."""
        if isinstance(reranker, TokenRescorer):
            return reranker.score_rows(queries, [head.rows for head in heads])
        rows = np.concatenate([head.rows for head in heads]) if heads else np.empty(0, np.int64)
        unique = np.unique(rows).tolist()
        documents = self.collection.documents.get_rows(unique)
        texts = {row: document.content for row, document in zip(unique, documents, strict=True)}
        if isinstance(reranker, ListReranker):
            return reranker.score_lists(
                queries, [[texts[row] for row in head.rows.tolist()] for head in heads]
            )
        pairs = [
            (query, texts[row])
            for query, head in zip(queries, heads, strict=True)
            for row in head.rows.tolist()
        ]
        scores = reranker.score(pairs)
        bounds = np.cumsum([0, *(len(head) for head in heads)])
        return [scores[start:end] for start, end in itertools.pairwise(bounds)]
