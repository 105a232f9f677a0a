"""Fuse rankings from several retrievers: calibrated sums, normalised convex sums and
reciprocal rank fusion.

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

FusionMethod = Literal["calibrated", "convex", "rrf"]
FUSION_METHODS: tuple[FusionMethod, ...] = ("calibrated", "rrf", "convex")
# How a convex fusion puts each list's scores on one scale: min-max to [0, 1], or z-scores (how
# many standard deviations above the list's mean), which let a list whose top stands out from
# the rest count for more than one whose scores are all alike.
Normalization = Literal["min-max", "z-score"]
NORMALIZATIONS: tuple[Normalization, ...] = ("min-max", "z-score")
# The hybrid retriever's lists, in the order its weights (alpha, 1 - alpha) apply to.
HYBRID_LISTS = ("dense", "bm25")
# The dense weight of a convex hybrid fusion unless told otherwise: chosen on SciFact's train
# split (benchmarks/hybrid_sweep.py); the hybrid default before calibrated fusion.
CONVEX_ALPHA = 0.4
# A calibrated fusion's weight per retriever, on each list's own scale (ScoreScale); a list of
# another name weighs 1. BM25's weight is set per query by BM25_WEIGHT.
CALIBRATED_WEIGHTS = {"dense": 1.0, "splade": 0.15}


@dataclass(frozen=True)
class StandoutWeight:
    """BM25's weight in a calibrated fusion, per query, from how far its top candidate stands
    above its ``nth``, in shares of the most the query can score: ``low`` up to a gap of
    ``start``, rising linearly to ``high`` at ``start + ramp`` and beyond. A top that stands
    out is a document holding the query's own rare words, which BM25 judges best; a flat top
    is words many documents share, where the dense list should decide.

    Chosen by benchmarks/fusion_rule.py with the BM25 index's terms (HYBRID_TERMS): the best
    mean score over the query sets of benchmarks/fusion.py (SciFact train in place of SciFact
    test, held out) among the settings within half the safety margin of the better list alone
    on every set; fusion_rule.json also records fixed BM25 weights and each set left out.
    """

    low: float = 10.0
    high: float = 48.0
    start: float = 0.3
    ramp: float = 0.1
    nth: int = 10

    def describe(self) -> str:
        return f"{self.low:g} to {self.high:g} (as its top stands out)"

    def __call__(self, bm25: Ranking) -> float:
        calibrated = calibrated_scores(bm25)
        if len(calibrated) == 0:
            return self.low
        tenth = float(calibrated[self.nth - 1]) if len(calibrated) >= self.nth else 0.0
        rise = min(1.0, max(0.0, (float(calibrated[0]) - tenth - self.start) / self.ramp))
        return self.low + (self.high - self.low) * rise


BM25_WEIGHT = StandoutWeight()


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class FusionConfig:
    """How candidate lists combine.

    ``method``: ``calibrated`` (a weighted sum of each list's scores on its retriever's own
    scale for that query, see :class:`~densekit.retrieve.ranking.ScoreScale`; weights
    :data:`CALIBRATED_WEIGHTS` by retriever and BM25's per query, :data:`BM25_WEIGHT`, when
    ``weights`` is None), ``convex`` (a weighted sum of scores normalised within each list by
    ``normalization``, ``min-max`` or ``z-score``; equal weights when ``weights`` is None) or
    ``rrf`` (reciprocal rank fusion, rank offset ``k``).
    ``depth``: how many candidates each list gives when its stage sets no count of its own.
    """

    # No default: the hybrid retriever's default is calibrated (DEFAULT_FUSION), a pipeline
    # file's is rrf; FusionConfig() would silently mean one of them.
    method: FusionMethod
    k: int = 60
    weights: tuple[float, ...] | None = None
    depth: int = 100
    normalization: Normalization = "min-max"

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise InputError(
                f"fusion.method: unknown {self.method!r}; choose {', '.join(FUSION_METHODS)}"
            )
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
            if self.method == "rrf":
                raise InputError('fusion.weights apply to method = "convex" or "calibrated"')
            finite = all(math.isfinite(w) for w in self.weights)
            if not finite or any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise InputError(
                    f"fusion.weights must be non-negative and not all 0, got {self.weights}"
                )

    @classmethod
    def hybrid(
        cls,
        method: FusionMethod = "convex",
        alpha: float = CONVEX_ALPHA,
        rrf_k: int = 60,
        depth: int = 100,
        normalization: Normalization = "min-max",
    ) -> FusionConfig:
        """Dense + BM25 in the hybrid retriever's words: ``alpha`` weighs the dense scores of a
        convex sum (1 - alpha the BM25 ones); ``rrf_k`` is RRF's rank offset; a calibrated
        fusion takes its own weights."""
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

    def weights_for(
        self, lists: int, names: Sequence[str] = (), rankings: Sequence[Ranking] = ()
    ) -> tuple[float, ...]:
        """One weight per list. ``names`` (the lists' retrievers; the hybrid's when not given)
        choose a calibrated fusion's default weights, BM25's from its list in ``rankings``
        (:data:`BM25_WEIGHT`; without rankings, its lowest weight)."""
        if self.weights is None:
            if self.method == "calibrated":
                named = list(names) or list(HYBRID_LISTS[:lists])
                return tuple(
                    (BM25_WEIGHT(rankings[i]) if rankings else BM25_WEIGHT.low)
                    if name == "bm25"
                    else CALIBRATED_WEIGHTS.get(name, 1.0)
                    for i, name in enumerate(named)
                )
            return tuple(1.0 / lists for _ in range(lists))
        if len(self.weights) != lists:
            raise InputError(
                f"fusion.weights has {len(self.weights)} weights for {lists} candidate stages; "
                "give one per stage, in order"
            )
        return self.weights

    def fuse(self, rankings: Sequence[Ranking], names: Sequence[str] = ()) -> Ranking:
        """One ranking from ``rankings`` (of the retrievers ``names``, in order; the hybrid's
        dense and BM25 when not given)."""
        if self.method == "rrf":
            return reciprocal_rank_fusion(rankings, self.k)
        weights = self.weights_for(len(rankings), names, rankings)
        if self.method == "calibrated":
            return calibrated_fusion(rankings, weights)
        return convex_fusion(rankings, weights, self.normalization)

    def shares(self, rankings: Sequence[Ranking], names: Sequence[str] = ()) -> list[float]:
        """How much each list could move a document in this query's fused score, as shares
        summing to 1: its weight times the range its candidates span once normalised (RRF: the
        range of 1 / (k + rank)). The per-query weights a fusion actually applies."""
        if self.method == "rrf":
            ranges = [1 / (self.k + 1) - 1 / (self.k + len(r)) if len(r) else 0.0 for r in rankings]
            weights: Sequence[float] = [1.0] * len(rankings)
        else:
            weights = self.weights_for(len(rankings), names, rankings)
            normalise = self._normaliser()
            ranges = [float(np.ptp(normalise(r))) if len(r) else 0.0 for r in rankings]
        reach = [w * spread for w, spread in zip(weights, ranges, strict=True)]
        total = sum(reach)
        if total == 0:
            return [1.0 / len(rankings)] * len(rankings) if rankings else []
        return [part / total for part in reach]

    def _normaliser(self):
        if self.method == "calibrated":
            return calibrated_scores
        plain = min_max if self.normalization == "min-max" else z_scores
        return lambda ranking: plain(ranking.scores)

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
                float(data.get("alpha", CONVEX_ALPHA)),
                int(data.get("rrf_k", 60)),
                int(data.get("depth", 100)),
            )
        return cls.from_dict(data, source=source)


# The hybrid retriever's default for new collections: per-query calibrated scores, safe where
# either list is much the stronger (benchmarks/fusion.py). Collections built before keep the
# fusion their manifest names (convex, 0.4 × dense + 0.6 × BM25, min-max), still selectable.
DEFAULT_FUSION = FusionConfig("calibrated")


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


def calibrated_scores(ranking: Ranking) -> np.ndarray:
    """A list's scores on its retriever's own scale for the query (z-scores within the list
    where the retriever gave no scale)."""
    if ranking.scale is None:
        return z_scores(ranking.scores)
    return ranking.scale.apply(ranking.scores)


def calibrated_fusion(rankings: Sequence[Ranking], weights: Sequence[float]) -> Ranking:
    """Weighted sum of calibrated scores (:func:`calibrated_scores`): a list whose candidates
    stand out on their own scale counts for more in this query than one whose candidates are
    unremarkable. A document missing from a list scores that list's lowest candidate there."""
    return _weighted_sum([calibrated_scores(r) for r in rankings], rankings, weights, True)


def convex_fusion(
    rankings: Sequence[Ranking],
    weights: Sequence[float],
    normalization: Normalization = "min-max",
) -> Ranking:
    """Weighted sum of normalised scores. A document missing from a list ranked below every
    candidate it gave: it scores that list's lowest normalised score there (min-max: 0)."""
    normalise = min_max if normalization == "min-max" else z_scores
    normalised = [normalise(ranking.scores) for ranking in rankings]
    return _weighted_sum(normalised, rankings, weights, normalization != "min-max")


def _weighted_sum(
    normalised: Sequence[np.ndarray],
    rankings: Sequence[Ranking],
    weights: Sequence[float],
    floor_at_lowest: bool,
) -> Ranking:
    lists = [
        dict(zip(ranking.rows.tolist(), values.tolist(), strict=True))
        for ranking, values in zip(rankings, normalised, strict=True)
    ]
    floors = [min(scores.values()) if floor_at_lowest and scores else 0.0 for scores in lists]
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
    if fusion.method == "calibrated":
        if fusion.weights is None:
            bm25, dense = BM25_WEIGHT.describe(), f"{CALIBRATED_WEIGHTS['dense']:g}"
        else:
            dense, bm25 = (f"{w:g}" for w in fusion.weights_for(len(HYBRID_LISTS)))
        return (
            f"calibrated per query {dense} × dense (standard deviations above random "
            f"documents) + {bm25} × bm25 (share of the query's terms matched), depth "
            f"{fusion.depth}"
        )
    if fusion.method == "convex":
        dense, bm25 = fusion.weights_for(len(HYBRID_LISTS))
        scaled = "" if fusion.normalization == "min-max" else f" ({fusion.normalization})"
        return f"convex{scaled} {dense:g} × dense + {bm25:g} × bm25, depth {fusion.depth}"
    return f"rrf k {fusion.k}, depth {fusion.depth}"
