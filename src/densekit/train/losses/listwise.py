"""Listwise softmax loss for cross-encoders over one positive and its hard negatives.

With raw cross-encoder logits s(q, ·) of a query's positive p and its k hard negatives,

    L = -log softmax(s(q, p), s(q, n_1), ..., s(q, n_k))[0]

the localised contrastive estimation (LCE) of Gao, Dai and Callan, "Rethink Training of BERT
Rerankers in Multi-Stage Retrieval Pipeline" (ECIR 2021).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from densekit.errors import MissingDependencyError

try:
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss
except ImportError:  # pragma: no cover - the train extra brings sentence-transformers
    raise MissingDependencyError("sentence-transformers", "train") from None


class HardNegativeSoftmaxLoss(MultipleNegativesRankingLoss):
    """Cross-entropy of the positive against its own hard negatives, on raw logits:
    L = -log softmax(s(q, p), s(q, n_1), ..., s(q, n_k))[0].

    Columns: (query, positive, negative_1, ..., negative_k). sentence-transformers'
    MultipleNegativesRankingLoss adds in-batch negatives (a pass over other queries' passages,
    which a cross-encoder pays for in full) and squashes logits through a sigmoid; on SciFact's
    train split, hard negatives alone on raw logits rank better for the same CPU time.
    """

    def __init__(self, model: Any) -> None:  # a sentence-transformers CrossEncoder
        super().__init__(model, num_negatives=None, scale=1.0, activation_fn=None)

    def get_in_batch_negatives(
        self, anchors: list[str], candidates: list[list[str]]
    ) -> Iterator[list[str]]:
        return iter(())

    def get_config_dict(self) -> dict[str, str]:
        return {"negatives": "hard negatives only", "logits": "raw"}
