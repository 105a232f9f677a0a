"""InfoNCE for bi-encoders, with focal reweighting and synthetic hard negatives.

For query i with documents D (every positive and hard negative in the batch; its own positive
at index i), p_i = softmax(q_i · D / τ)[i] over cosine similarities, and

    L = mean_i  -(1 - p_i)^γ · log p_i

γ = 0 is plain InfoNCE (in-batch and hard negatives); γ > 0 is the focal form of
KaLM-Embedding-V2, which shrinks the loss of queries already solved and keeps the hard ones.

Mixing (MoCHi, Kalantidis et al. 2020) adds synthetic negatives to each query's row: convex
mixes of pairs of its hardest real negatives, normalised, and mixes of the query itself with one
of them (β < 0.5, so they stay negatives yet come closer than the negative they were mixed
from). They carry no
gradient: they only make the softmax's denominator harder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densekit.errors import InputError


@dataclass(frozen=True)
class Mixing:
    """How many synthetic negatives per query, made from its ``hardest`` real negatives."""

    pairs: int = 8  # mixes of two hard negatives
    with_query: int = 4  # mixes of the query and one hard negative
    hardest: int = 16
    max_query_share: float = 0.5  # β in β·q + (1-β)·n is drawn from [0, max_query_share)

    def __post_init__(self) -> None:
        if self.pairs < 0 or self.with_query < 0 or self.pairs + self.with_query == 0:
            raise InputError("mixing needs pairs >= 0, with_query >= 0 and at least one mix")
        if self.hardest < 2:
            raise InputError(f"mixing.hardest must be at least 2, got {self.hardest}")
        if not 0 < self.max_query_share <= 0.5:
            raise InputError(
                f"mixing.max_query_share must be in (0, 0.5], got {self.max_query_share}"
            )


def info_nce(
    queries: Tensor,
    documents: Tensor,
    *,
    temperature: float,
    focal_gamma: float = 0.0,
    synthetic: Tensor | None = None,
) -> Tensor:
    """The loss above. ``queries`` (B, d) and ``documents`` (N ≥ B, d) are L2-normalised, the
    positive of query i is document i; ``synthetic`` (B, S, d) adds S negatives per query."""
    logits = queries @ documents.T
    if synthetic is not None:
        logits = torch.cat([logits, torch.einsum("bd,bsd->bs", queries, synthetic)], dim=1)
    log_p = F.log_softmax(logits / temperature, dim=1)
    positive = log_p[torch.arange(len(queries)), torch.arange(len(queries))]
    if focal_gamma:
        return -((1 - positive.exp()) ** focal_gamma * positive).mean()
    return -positive.mean()


@dataclass(frozen=True)
class Distillation:
    """Match a teacher's scores of each query's own candidates (positive, then negatives).

    Both sides are compared as logits: student cosines s divided by the contrastive
    temperature, teacher scores t (raw cross-encoder logits) by ``teacher_temperature``.
    margin-mse (Hofstätter et al.): mean over negatives j of
        ((s_p - s_j) / temperature - (t_p - t_j) / teacher_temperature)^2;
    kl: KL(softmax(t / teacher_temperature) || softmax(s / temperature)).
    """

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


def hard_negative_mixes(
    queries: Tensor, documents: Tensor, mixing: Mixing, generator: torch.Generator
) -> Tensor:
    """(B, S, d) normalised synthetic negatives per query, without gradient."""
    with torch.no_grad():
        batch = len(queries)
        scores = queries @ documents.T
        scores[torch.arange(batch), torch.arange(batch)] = float("-inf")  # never the positive
        hardest = min(mixing.hardest, documents.shape[0] - 1)
        top = scores.topk(hardest, dim=1).indices  # (B, h)
        pools = documents[top]  # (B, h, d)
        mixes = []
        if mixing.pairs:
            first = torch.randint(hardest, (batch, mixing.pairs), generator=generator)
            second = torch.randint(hardest, (batch, mixing.pairs), generator=generator)
            alpha = torch.rand(batch, mixing.pairs, 1, generator=generator)
            mixes.append(alpha * _take(pools, first) + (1 - alpha) * _take(pools, second))
        if mixing.with_query:
            chosen = torch.randint(hardest, (batch, mixing.with_query), generator=generator)
            beta = torch.rand(batch, mixing.with_query, 1, generator=generator)
            beta = beta * mixing.max_query_share
            mixes.append(beta * queries[:, None, :] + (1 - beta) * _take(pools, chosen))
        return F.normalize(torch.cat(mixes, dim=1), dim=-1)


def _take(pools: Tensor, index: Tensor) -> Tensor:
    return torch.gather(pools, 1, index[..., None].expand(-1, -1, pools.shape[-1]))


class ContrastiveLoss(nn.Module):
    """A sentence-transformers loss over (anchor, positive, negative_1..n) columns."""

    def __init__(
        self,
        model: Any,
        *,
        temperature: float = 0.05,
        focal_gamma: float = 0.0,
        mixing: Mixing | None = None,
        distillation: Distillation | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not temperature > 0 or focal_gamma < 0:
            raise InputError("temperature must be > 0 and focal_gamma >= 0")
        self.model = model
        self.temperature = temperature
        self.focal_gamma = focal_gamma
        self.mixing = mixing
        self.distillation = distillation
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, sentence_features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        embeddings = [self.model(f)["sentence_embedding"] for f in sentence_features]
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None
    ) -> Tensor:
        queries = F.normalize(embeddings[0], dim=-1)
        documents = F.normalize(torch.cat(embeddings[1:]), dim=-1)
        synthetic = None
        if self.mixing is not None and documents.shape[0] > 1:
            synthetic = hard_negative_mixes(
                queries.detach().cpu(), documents.detach().cpu(), self.mixing, self.generator
            ).to(queries.device)
        loss = info_nce(
            queries,
            documents,
            temperature=self.temperature,
            focal_gamma=self.focal_gamma,
            synthetic=synthetic,
        )
        if self.distillation is None:
            return loss
        if labels is None or labels.ndim != 2:
            raise InputError("distillation needs the teacher's scores of each row (a label column)")
        student = own_candidate_scores(queries, documents)
        teacher = labels.to(student.device, student.dtype)
        distilled = distillation_loss(student, teacher, self.distillation, self.temperature)
        return loss + self.distillation.weight * distilled

    @property
    def citation(self) -> str:
        return ""

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "focal_gamma": self.focal_gamma,
            "mixing": None if self.mixing is None else vars(self.mixing),
            "distillation": None if self.distillation is None else vars(self.distillation),
        }
