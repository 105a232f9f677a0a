"""Small learned maps on frozen or black-box embeddings."""

from densekit.adapt.training import (
    AdapterTraining,
    AdapterTrainingReport,
    train_adapter,
    train_lexsem,
)
from densekit.encode.adapters.files import load_adapter, save_adapter
from densekit.encode.adapters.lexsem import LexSemBridge, LexSemSpec, QueryTokens
from densekit.encode.adapters.residual import AdapterSpec, ResidualAdapter

__all__ = [
    "AdapterSpec",
    "AdapterTraining",
    "AdapterTrainingReport",
    "LexSemBridge",
    "LexSemSpec",
    "QueryTokens",
    "ResidualAdapter",
    "load_adapter",
    "save_adapter",
    "train_adapter",
    "train_lexsem",
]
