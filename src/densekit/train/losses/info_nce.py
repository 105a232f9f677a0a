"""InfoNCE over in-batch and hard negatives, for bi-encoders.

For query i with documents D (every positive and hard negative in the batch; its own positive
at index i) and cosine similarities,

    log p_i = log softmax(q_i · D / τ)[i],        L = mean_i -log p_i

From van den Oord et al., "Representation Learning with Contrastive Predictive Coding" (2018),
with in-batch negatives as in DPR (Karpukhin et al., EMNLP 2020). Options: focal weighting of
each query's term (``focal_gamma``, see :mod:`.focal`) and synthetic negatives joining each
query's denominator (``mixing``, see :mod:`.mixing`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densekit.errors import InputError
from densekit.train.losses.focal import focal_nll
from densekit.train.losses.mixing import Mixing, hard_negative_mixes


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
    return focal_nll(positive, focal_gamma)


class EmbeddingLoss(nn.Module):
    """A sentence-transformers loss over (anchor, positive, negative_1..n) columns, computed
    from their embeddings (so Matryoshka wrappers can hand it truncated ones)."""

    model: Any

    def forward(self, sentence_features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        embeddings = [self.model(f)["sentence_embedding"] for f in sentence_features]
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None
    ) -> Tensor:
        raise NotImplementedError

    @property
    def citation(self) -> str:
        return ""


class InfoNCE(EmbeddingLoss):
    """InfoNCE (focal and mixed as configured) over the columns' embeddings."""

    def __init__(
        self,
        model: Any,
        *,
        temperature: float = 0.05,
        focal_gamma: float = 0.0,
        mixing: Mixing | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not temperature > 0 or focal_gamma < 0:
            raise InputError("temperature must be > 0 and focal_gamma >= 0")
        self.model = model
        self.temperature = temperature
        self.focal_gamma = focal_gamma
        self.mixing = mixing
        self.generator = torch.Generator().manual_seed(seed)

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None
    ) -> Tensor:
        queries, documents = normalised_columns(embeddings)
        synthetic = None
        if self.mixing is not None and documents.shape[0] > 1:
            synthetic = hard_negative_mixes(
                queries.detach().cpu(), documents.detach().cpu(), self.mixing, self.generator
            ).to(queries.device)
        return info_nce(
            queries,
            documents,
            temperature=self.temperature,
            focal_gamma=self.focal_gamma,
            synthetic=synthetic,
        )

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "focal_gamma": self.focal_gamma,
            "mixing": None if self.mixing is None else vars(self.mixing),
        }


def normalised_columns(embeddings: list[Tensor]) -> tuple[Tensor, Tensor]:
    """L2-normalised queries (the anchor column) and documents (every other column, stacked)."""
    return F.normalize(embeddings[0], dim=-1), F.normalize(torch.cat(embeddings[1:]), dim=-1)
