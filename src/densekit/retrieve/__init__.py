"""Retrieval: the collection users search, retrievers, pipelines, fusion and reranking."""

from densekit.retrieve.collection import Collection, build_collection, open_collection
from densekit.retrieve.fusion import (
    DEFAULT_FUSION,
    NORMALIZATIONS,
    FusionConfig,
    convex_fusion,
    reciprocal_rank_fusion,
)
from densekit.retrieve.pipeline import CandidateStage, Pipeline, RerankStage, builtin_pipeline
from densekit.retrieve.ranking import Hit, Ranking
from densekit.retrieve.retrievers import (
    DenseRetriever,
    LexicalRetriever,
    MultiVectorRetriever,
    Retriever,
    SparseRetriever,
    open_retriever,
)
from densekit.retrieve.searcher import Searcher
from densekit.store.manifest import RETRIEVER_NAMES

__all__ = [
    "DEFAULT_FUSION",
    "NORMALIZATIONS",
    "RETRIEVER_NAMES",
    "CandidateStage",
    "Collection",
    "DenseRetriever",
    "FusionConfig",
    "Hit",
    "LexicalRetriever",
    "MultiVectorRetriever",
    "Pipeline",
    "Ranking",
    "RerankStage",
    "Retriever",
    "Searcher",
    "SparseRetriever",
    "build_collection",
    "builtin_pipeline",
    "convex_fusion",
    "open_collection",
    "open_retriever",
    "reciprocal_rank_fusion",
]
