"""Training: hard-negative mining, reranker fine-tuning, contrastive losses, recipes, soups.

Names load on first use: most of them pull in torch, which the CLI should pay for only when a
command trains.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ContrastiveLoss": "contrastive",
    "Mixing": "contrastive",
    "info_nce": "contrastive",
    "MiningConfig": "negatives",
    "mine_negatives": "negatives",
    "DataRecipe": "recipe",
    "LossRecipe": "recipe",
    "Recipe": "recipe",
    "TrainRecipe": "recipe",
    "RerankerTraining": "reranker",
    "TrainingReport": "reranker",
    "train_reranker": "reranker",
    "SoupReport": "soup",
    "soup_models": "soup",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'densekit.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"densekit.train.{_HOMES[name]}"), name)
