"""Fuse rankings from several retrievers: reciprocal rank fusion and normalised convex sums."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from densekit.errors import InputError
from densekit.retrieve.ranking import Ranking

FusionMethod = Literal["convex", "rrf"]


@dataclass(frozen=True)
class FusionConfig:
    """How hybrid retrieval combines dense and BM25 rankings.

    ``alpha`` weighs the dense scores in a convex sum (1 - alpha for BM25); ``rrf_k`` is the
    rank offset of reciprocal rank fusion; ``depth`` is how many candidates each side gives.
    """

    method: FusionMethod = "convex"
    alpha: float = 0.4
    rrf_k: int = 60
    depth: int = 100

    def __post_init__(self) -> None:
        if self.method not in ("convex", "rrf"):
            raise InputError(f"unknown fusion method {self.method!r}; choose convex or rrf")
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"fusion alpha must be in [0, 1], got {self.alpha}")
        if self.rrf_k < 0 or self.depth < 1:
            raise InputError(
                f"fusion needs rrf_k >= 0 and depth >= 1, got {self.rrf_k}, {self.depth}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FusionConfig:
        return cls(**data) if data else DEFAULT_FUSION


# Chosen on SciFact's train split (benchmarks/hybrid_sweep.py), then checked on other sets.
DEFAULT_FUSION = FusionConfig(method="convex", alpha=0.4)


def min_max(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant list maps to all ones (every candidate equally good)."""
    if len(scores) == 0:
        return scores.astype(np.float32)
    low, high = float(scores.min()), float(scores.max())
    if high == low:
        return np.ones_like(scores, dtype=np.float32)
    return ((scores - low) / (high - low)).astype(np.float32)


def blend(new: np.ndarray, old: np.ndarray, weight: float) -> np.ndarray:
    """``weight`` × min-max(new) + (1 - weight) × min-max(old), for the same candidates."""
    return (weight * min_max(new) + (1.0 - weight) * min_max(old)).astype(np.float32)


def convex_fusion(rankings: Sequence[Ranking], weights: Sequence[float]) -> Ranking:
    """Sum of min-max normalised scores; a document missing from a list scores 0 there."""
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for row, score in zip(ranking.rows.tolist(), min_max(ranking.scores).tolist(), strict=True):
            fused[row] = fused.get(row, 0.0) + weight * score
    return Ranking.from_mapping(fused)


def reciprocal_rank_fusion(rankings: Sequence[Ranking], k: int = 60) -> Ranking:
    """Cormack et al. (2009): score = sum over lists of 1 / (k + rank), ranks from 1."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking.rows.tolist(), start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (k + rank)
    return Ranking.from_mapping(fused)


def fuse(dense: Ranking, lexical: Ranking, config: FusionConfig) -> Ranking:
    if config.method == "rrf":
        return reciprocal_rank_fusion([dense, lexical], config.rrf_k)
    return convex_fusion([dense, lexical], [config.alpha, 1.0 - config.alpha])
