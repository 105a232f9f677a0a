"""Retrieval: dense, BM25 and hybrid rankings, and their fusion."""

from densekit.retrieve.fusion import (
    DEFAULT_FUSION,
    FusionConfig,
    convex_fusion,
    fuse,
    reciprocal_rank_fusion,
)
from densekit.retrieve.pipeline import CandidateStage, FusionStage, Pipeline, RerankStage
from densekit.retrieve.ranking import Hit, Ranking
from densekit.retrieve.searcher import RETRIEVER_NAMES, Searcher

__all__ = [
    "DEFAULT_FUSION",
    "RETRIEVER_NAMES",
    "CandidateStage",
    "FusionConfig",
    "FusionStage",
    "Hit",
    "Pipeline",
    "Ranking",
    "RerankStage",
    "Searcher",
    "convex_fusion",
    "fuse",
    "reciprocal_rank_fusion",
]
