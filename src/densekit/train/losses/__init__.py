"""Training losses, one per module, each with its formula and paper; composed by wrapping, as
sentence-transformers' losses are: ``DistillationLoss(InfoNCE(model), Distillation())``.

Names load on first use: the losses pull in torch (and some sentence-transformers).
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "InfoNCE": "info_nce",
    "info_nce": "info_nce",
    "focal_nll": "focal",
    "Mixing": "mixing",
    "hard_negative_mixes": "mixing",
    "Distillation": "distillation",
    "DistillationLoss": "distillation",
    "distillation_loss": "distillation",
    "own_candidate_scores": "distillation",
    "MatryoshkaRecipe": "matryoshka",
    "matryoshka_loss": "matryoshka",
    "HardNegativeSoftmaxLoss": "listwise",
    "grl_loss": "grl",
    "dpo_loss": "dpo",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'densekit.train.losses' has no attribute {name!r}")
    return getattr(importlib.import_module(f"densekit.train.losses.{_HOMES[name]}"), name)
