"""Small learned maps on frozen or black-box embeddings."""

from densekit.adapt.files import load_adapter, save_adapter
from densekit.adapt.residual import AdapterSpec, ResidualAdapter
from densekit.adapt.training import AdapterTraining, AdapterTrainingReport, train_adapter

__all__ = [
    "AdapterSpec",
    "AdapterTraining",
    "AdapterTrainingReport",
    "ResidualAdapter",
    "load_adapter",
    "save_adapter",
    "train_adapter",
]
