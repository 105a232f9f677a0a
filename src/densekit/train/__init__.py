"""Training, one family: a config (from TOML or flags) → train_model / train_reranker /
train_llm / train_binary_pv / train_defsent → a TrainResult with its report; one
MiningConfig for hard negatives; losses one per module under train.losses; soups.

Names load on first use: most of them pull in torch, which the CLI should pay for only when a
command trains.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "InfoNCE": "losses.info_nce",
    "Mixing": "losses.mixing",
    "info_nce": "losses.info_nce",
    "MiningConfig": "mining",
    "mine_negatives": "mining",
    "mine_triplets": "pairs",
    "LossRecipe": "recipe",
    "Recipe": "recipe",
    "TrainRecipe": "recipe",
    "TrainResult": "result",
    "TrainConfig": "bi_encoder",
    "ModelTrainingReport": "bi_encoder",
    "train_model": "bi_encoder",
    "RerankerConfig": "reranker",
    "RerankerTraining": "reranker",
    "MultiViewTraining": "multiview",
    "TrainingReport": "reranker",
    "train_reranker": "reranker",
    "LlmConfig": "llm",
    "LlmTraining": "llm_trainer",
    "LlmTrainingReport": "llm",
    "LoraSettings": "llm_trainer",
    "train_llm": "llm",
    "BinaryPVTraining": "binary_pv",
    "BinaryPVResult": "binary_pv",
    "train_binary_pv": "binary_pv",
    "DefSentConfig": "defsent",
    "DefSentTraining": "defsent",
    "DefSentReport": "defsent",
    "train_defsent": "defsent",
    "SoupReport": "soup",
    "soup_models": "soup",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'densekit.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"densekit.train.{_HOMES[name]}"), name)
