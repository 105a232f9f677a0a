"""Score distillation from a cross-encoder teacher, added to a contrastive loss by wrapping it.

Both sides are compared as logits over each query's own candidates (positive, then negatives):
student cosines s divided by the wrapped loss's temperature τ, teacher scores t (raw
cross-encoder logits) by the teacher temperature τ_t.

    margin-mse:  mean over queries and negatives j of ((s_p - s_j) / τ - (t_p - t_j) / τ_t)^2
    kl:          KL(softmax(t / τ_t) ‖ softmax(s / τ))
    L = L_wrapped + weight · L_distill

Margin-MSE from Hofstätter et al., "Improving Efficient Neural Ranking Models with
Cross-Architecture Knowledge Distillation" (2020); the KL form from RocketQAv2 (Ren et al.,
EMNLP 2021). Use: ``DistillationLoss(InfoNCE(model), Distillation("kl"))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from densekit.errors import InputError
from densekit.train.losses.info_nce import EmbeddingLoss, normalised_columns


@dataclass(frozen=True)
class Distillation:
    """Match a teacher's scores of each query's own candidates (positive, then negatives)."""

    kind: str = "margin-mse"
    weight: float = 1.0
    teacher_temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("margin-mse", "kl"):
            raise InputError(f"distill.kind must be margin-mse or kl, got {self.kind!r}")
        if not self.weight > 0 or not self.teacher_temperature > 0:
            raise InputError("distill.weight and distill.teacher_temperature must be above 0")


def distillation_loss(
    student: Tensor, teacher: Tensor, distillation: Distillation, temperature: float
) -> Tensor:
    """``student`` and ``teacher`` are (B, 1 + k) scores of each query's positive and its k
    negatives, in the same order."""
    student = student / temperature
    teacher = teacher / distillation.teacher_temperature
    if distillation.kind == "margin-mse":
        student_margins = student[:, :1] - student[:, 1:]
        teacher_margins = teacher[:, :1] - teacher[:, 1:]
        return F.mse_loss(student_margins, teacher_margins)
    target = F.softmax(teacher, dim=1)
    return F.kl_div(F.log_softmax(student, dim=1), target, reduction="batchmean")


def own_candidate_scores(queries: Tensor, documents: Tensor) -> Tensor:
    """(B, 1 + k) cosines of each query with its own positive and negatives, from documents
    stacked column by column (positives, then negative_1 for every query, ...)."""
    batch = len(queries)
    own = documents.reshape(-1, batch, documents.shape[-1]).transpose(0, 1)  # (B, 1 + k, d)
    return torch.einsum("bd,bcd->bc", queries, own)


class DistillationLoss(EmbeddingLoss):
    """The wrapped loss plus the distillation term; the teacher's (B, 1 + k) scores come as
    the label column."""

    def __init__(self, loss: Any, distillation: Distillation) -> None:
        super().__init__()
        self.loss = loss  # any loss with a model, a temperature and compute_loss_from_embeddings
        self.model = loss.model
        self.distillation = distillation

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None
    ) -> Tensor:
        loss = self.loss.compute_loss_from_embeddings(embeddings, labels)
        if labels is None or labels.ndim != 2:
            raise InputError("distillation needs the teacher's scores of each row (a label column)")
        queries, documents = normalised_columns(embeddings)
        student = own_candidate_scores(queries, documents)
        teacher = labels.to(student.device, student.dtype)
        temperature = self.loss.temperature
        distilled = distillation_loss(student, teacher, self.distillation, temperature)
        return loss + self.distillation.weight * distilled

    def get_config_dict(self) -> dict[str, Any]:
        return {**self.loss.get_config_dict(), "distillation": vars(self.distillation)}
