"""A ranked list of collection rows with scores, best first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from densekit.index.late_interaction import TokenVectors

# How many documents a dense or sparse list's scores are measured against (see ScoreScale):
# enough for a stable mean and spread, few enough to score with every query.
REFERENCE_DOCUMENTS = 1000
# Fewer for token vectors: a query's MaxSim with each of them costs about its tokens times the
# documents' (hundreds each), and they are kept decoded in memory.
REFERENCE_TOKEN_DOCUMENTS = 256


@dataclass(frozen=True)
class ScoreScale:
    """Where one query's scores from a retriever sit on a scale that means the same for every
    query: ``(score - center) / spread``. Dense and SPLADE lists measure it against the query's
    scores for a fixed sample of the collection's documents (how many standard deviations a
    candidate stands above a random document); BM25 divides by the most the query's terms can
    score (the share of the query a candidate matches)."""

    center: float
    spread: float

    def apply(self, scores: np.ndarray) -> np.ndarray:
        return ((scores.astype(np.float64) - self.center) / self.spread).astype(np.float32)


def reference_scales(scores: np.ndarray) -> list[ScoreScale | None]:
    """Each query's scale from its scores (one row per query) for the reference documents:
    their mean and standard deviation; None where they are all alike (nothing to measure by)."""
    if scores.shape[1] == 0:
        return [None] * len(scores)
    centers, spreads = scores.mean(axis=1), scores.std(axis=1)
    return [
        ScoreScale(float(center), float(spread)) if spread > 0 else None
        for center, spread in zip(centers, spreads, strict=True)
    ]


def maxsim_scales(
    queries: Sequence[np.ndarray], reference: TokenVectors | None
) -> list[ScoreScale | None]:
    """Each query's scale (token vectors) from its MaxSim with the reference documents."""
    if reference is None or not queries:
        return [None] * len(queries)
    every = np.arange(reference.documents)
    return reference_scales(np.stack([reference.maxsim(query, every) for query in queries]))


@dataclass(frozen=True)
class Ranking:
    """Rows best first with their scores; ``scale`` calibrates the scores where the retriever
    knows how (see :class:`ScoreScale`)."""

    rows: np.ndarray
    scores: np.ndarray
    scale: ScoreScale | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_mapping(cls, scores: Mapping[int, float]) -> Ranking:
        # Ties break on row for a deterministic order.
        ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        rows = np.fromiter((row for row, _ in ordered), dtype=np.int64, count=len(ordered))
        values = np.fromiter((s for _, s in ordered), dtype=np.float32, count=len(ordered))
        return cls(rows, values)

    def top(self, k: int) -> Ranking:
        return Ranking(self.rows[:k], self.scores[:k], self.scale)


@dataclass(frozen=True)
class Hit:
    """One search result, for people and for run files."""

    id: str
    score: float
    rank: int
    title: str = ""
    text: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
