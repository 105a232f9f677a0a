"""Fuse rankings from several retrievers: reciprocal rank fusion and normalised convex sums.

One configuration, :class:`FusionConfig`, serves the hybrid retriever (dense + BM25, with its
``alpha`` vocabulary) and every pipeline's ``[fusion]`` table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from densekit.errors import InputError
from densekit.retrieve.ranking import Ranking
from densekit.tomlfile import refuse_unknown_keys

FusionMethod = Literal["convex", "rrf"]
FUSION_METHODS: tuple[FusionMethod, ...] = ("rrf", "convex")
# How a convex fusion puts each list's scores on one scale: min-max to [0, 1], or z-scores (how
# many standard deviations above the list's mean), which let a list whose top stands out from
# the rest count for more than one whose scores are all alike.
Normalization = Literal["min-max", "z-score"]
NORMALIZATIONS: tuple[Normalization, ...] = ("min-max", "z-score")
# The hybrid retriever's lists, in the order its weights (alpha, 1 - alpha) apply to.
HYBRID_LISTS = ("dense", "bm25")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class FusionConfig:
    """How candidate lists combine.

    ``method``: ``rrf`` (reciprocal rank fusion, rank offset ``k``) or ``convex`` (a weighted sum
    of normalised scores, one weight per list; equal weights when ``weights`` is None), with
    each list's scores normalised by ``normalization`` (``min-max`` or ``z-score``).
    ``depth``: how many candidates each list gives when its stage sets no count of its own.
    """

    # No default: the hybrid retriever's default is convex (DEFAULT_FUSION), a pipeline file's
    # is rrf; FusionConfig() would silently mean one of them.
    method: FusionMethod
    k: int = 60
    weights: tuple[float, ...] | None = None
    depth: int = 100
    normalization: Normalization = "min-max"

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise InputError(f"fusion.method: unknown {self.method!r}; choose rrf or convex")
        if self.normalization not in NORMALIZATIONS:
            raise InputError(
                f"fusion.normalization: unknown {self.normalization!r}; choose "
                f"{' or '.join(NORMALIZATIONS)}"
            )
        if self.normalization != "min-max" and self.method != "convex":
            raise InputError('fusion.normalization applies to method = "convex" only')
        if not _whole(self.k) or self.k < 0:
            raise InputError(f"fusion.k must be a whole number, 0 or more, got {self.k!r}")
        if not _whole(self.depth) or self.depth < 1:
            raise InputError(
                f"fusion.depth must be a whole number of at least 1, got {self.depth!r}"
            )
        if self.weights is not None:
            if self.method != "convex":
                raise InputError('fusion.weights apply to method = "convex" only')
            finite = all(math.isfinite(w) for w in self.weights)
            if not finite or any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise InputError(
                    f"fusion.weights must be non-negative and not all 0, got {self.weights}"
                )

    @classmethod
    def hybrid(
        cls,
        method: FusionMethod = "convex",
        alpha: float = 0.4,
        rrf_k: int = 60,
        depth: int = 100,
        normalization: Normalization = "min-max",
    ) -> FusionConfig:
        """Dense + BM25 in the hybrid retriever's words: ``alpha`` weighs the dense scores of a
        convex sum (1 - alpha the BM25 ones); ``rrf_k`` is RRF's rank offset."""
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"fusion alpha must be in [0, 1], got {alpha}")
        if method != "convex":
            return cls(method, k=rrf_k, depth=depth)
        weights = (alpha, 1.0 - alpha)
        return cls("convex", k=rrf_k, weights=weights, depth=depth, normalization=normalization)

    @property
    def alpha(self) -> float | None:
        """The first list's weight of a two-list convex fusion (the hybrid's dense weight)."""
        if self.method != "convex" or self.weights is None or len(self.weights) != 2:
            return None
        return self.weights[0] / sum(self.weights)

    def weights_for(self, lists: int) -> tuple[float, ...]:
        if self.weights is None:
            return tuple(1.0 / lists for _ in range(lists))
        if len(self.weights) != lists:
            raise InputError(
                f"fusion.weights has {len(self.weights)} weights for {lists} candidate stages; "
                "give one per stage, in order"
            )
        return self.weights

    def fuse(self, rankings: Sequence[Ranking]) -> Ranking:
        if self.method == "rrf":
            return reciprocal_rank_fusion(rankings, self.k)
        return convex_fusion(rankings, self.weights_for(len(rankings)), self.normalization)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method, "k": self.k, "depth": self.depth}
        if self.weights is not None:
            data["weights"] = list(self.weights)
        if self.normalization != "min-max":  # min-max: what collections stored before say
            data["normalization"] = self.normalization
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "") -> FusionConfig:
        """A ``[fusion]`` table (method, k, weights, depth), every key and value checked;
        ``source`` (a file) starts every error message."""
        prefix = f"{source}: " if source else ""
        known = {"method", "k", "weights", "depth", "normalization"}
        refuse_unknown_keys(data, known, f"{prefix}fusion")
        values = dict(data)
        weights = values.get("weights")
        if weights is not None:
            if not isinstance(weights, list | tuple) or not all(
                isinstance(w, int | float) and not isinstance(w, bool) for w in weights
            ):
                raise InputError(
                    f"{prefix}fusion.weights must be a list of numbers, got {weights!r}"
                )
            values["weights"] = tuple(float(w) for w in weights)
        values.setdefault("method", "rrf")  # a pipeline file's default
        for key in ("method", "normalization"):
            if key in values and not isinstance(values[key], str):
                raise InputError(f"{prefix}fusion.{key} must be a string, got {values[key]!r}")
        try:
            return cls(**values)
        except InputError as exc:
            raise InputError(f"{prefix}{exc}") from None

    @classmethod
    def stored(
        cls, data: Mapping[str, Any] | None, *, source: str = "manifest.json"
    ) -> FusionConfig:
        """A collection's default fusion from its manifest: what :meth:`to_dict` writes, or the
        hybrid vocabulary (``alpha``, ``rrf_k``) of collections built before; empty:
        :data:`DEFAULT_FUSION`. ``source`` starts every error message."""
        if not data:
            return DEFAULT_FUSION
        if "alpha" in data or "rrf_k" in data:
            return cls.hybrid(
                data.get("method", "convex"),
                float(data.get("alpha", 0.4)),
                int(data.get("rrf_k", 60)),
                int(data.get("depth", 100)),
            )
        return cls.from_dict(data, source=source)


# The hybrid retriever's default: chosen on SciFact's train split (benchmarks/hybrid_sweep.py).
DEFAULT_FUSION = FusionConfig.hybrid("convex", alpha=0.4)


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


def z_scores(scores: np.ndarray) -> np.ndarray:
    """Standard deviations above the list's mean; a constant list says nothing (all zeros)."""
    if len(scores) == 0:
        return scores.astype(np.float32)
    values = scores.astype(np.float64)
    spread = float(values.std())
    if spread == 0.0:
        return np.zeros(len(values), dtype=np.float32)
    return ((values - values.mean()) / spread).astype(np.float32)


def convex_fusion(
    rankings: Sequence[Ranking],
    weights: Sequence[float],
    normalization: Normalization = "min-max",
) -> Ranking:
    """Weighted sum of normalised scores. A document missing from a list ranked below every
    candidate it gave: it scores that list's lowest normalised score there (min-max: 0)."""
    normalise = min_max if normalization == "min-max" else z_scores
    lists = [
        dict(zip(ranking.rows.tolist(), normalise(ranking.scores).tolist(), strict=True))
        for ranking in rankings
    ]
    floors = [
        0.0 if normalization == "min-max" or not scores else min(scores.values())
        for scores in lists
    ]
    rows = dict.fromkeys(row for scores in lists for row in scores)
    fused = {
        row: sum(
            weight * scores.get(row, floor)
            for scores, floor, weight in zip(lists, floors, weights, strict=True)
        )
        for row in rows
    }
    return Ranking.from_mapping(fused)


def reciprocal_rank_fusion(rankings: Sequence[Ranking], k: int = 60) -> Ranking:
    """Cormack et al. (2009): score = sum over lists of 1 / (k + rank), ranks from 1."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking.rows.tolist(), start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (k + rank)
    return Ranking.from_mapping(fused)


def describe_fusion(fusion: FusionConfig) -> str:
    """A hybrid fusion in a few words, for people."""
    if fusion.method == "convex":
        dense, bm25 = fusion.weights_for(len(HYBRID_LISTS))
        scaled = "" if fusion.normalization == "min-max" else f" ({fusion.normalization})"
        return f"convex{scaled} {dense:g} × dense + {bm25:g} × bm25, depth {fusion.depth}"
    return f"rrf k {fusion.k}, depth {fusion.depth}"
