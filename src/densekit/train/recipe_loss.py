"""A bi-encoder recipe's [loss] table as one loss, composed by wrapping:
``MatryoshkaLoss(DistillationLoss(InfoNCE(model), distillation))`` and its simpler forms.

With ``cached``, the contrastive core is sentence-transformers' CachedMultipleNegativesRankingLoss
(GradCache: Gao et al., "Scaling Deep Contrastive Learning Batch Size under Memory Limited
Setup", RepL4NLP 2021), the same InfoNCE computed in mini-batches.
"""

from __future__ import annotations

from typing import Any

from densekit.train.losses.distillation import DistillationLoss
from densekit.train.losses.info_nce import InfoNCE
from densekit.train.losses.matryoshka import matryoshka_loss
from densekit.train.recipe import LossRecipe


def build_loss(model: Any, loss: LossRecipe, seed: int) -> Any:
    contrastive = _contrastive_loss(model, loss, seed)
    if loss.matryoshka is None:
        return contrastive
    return matryoshka_loss(model, contrastive, loss.matryoshka)


def _contrastive_loss(model: Any, loss: LossRecipe, seed: int) -> Any:
    if loss.cached:
        from sentence_transformers.sentence_transformer.losses import (
            CachedMultipleNegativesRankingLoss,
        )

        return CachedMultipleNegativesRankingLoss(
            model, scale=1.0 / loss.temperature, mini_batch_size=loss.mini_batch
        )
    core = InfoNCE(
        model,
        temperature=loss.temperature,
        focal_gamma=loss.focal_gamma,
        mixing=loss.mixing,
        seed=seed,
    )
    if loss.distill is None:
        return core
    return DistillationLoss(core, loss.distill.distillation())
