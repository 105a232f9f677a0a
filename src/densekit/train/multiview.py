"""Train an MVP reranker (:mod:`densekit.encode.multiview`) on a dataset's training judgements.

Each step reads ``batch`` queries, each with one judged positive and ``negatives`` hard
negatives mined from a collection (the cross-encoder's groups, fresh negatives each epoch).
The loss is listwise, a softmax over each query's candidates of their MVP scores (the positive
is the target), plus ``orthogonality`` times the mean squared cosine between a passage's
views, which keeps the views distinct. The backbone learns at ``learning_rate``, the new parts
(anchor decoder) at ``decoder_learning_rate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from densekit.errors import InputError
from densekit.train.checks import whole
from densekit.train.mining import MiningConfig


@dataclass(frozen=True)
class MultiViewTraining:
    """How to train an MVP reranker. ``base``: minilm (default), an encoder or T5 folder or
    hub name, ``llm:NAME`` for a decoder LLM, or an MVP folder to train on."""

    base: str = "minilm"
    views: int = 4
    orthogonality: float = 0.1
    decoder_layers: int = 1
    epochs: int = 2
    batch: int = 4  # queries per step, each read with its positive and negatives
    learning_rate: float = 1e-4
    decoder_learning_rate: float = 1e-3
    warmup: float = 0.1
    max_length: int = 256
    negatives: int = 7  # per query and epoch, fresh each epoch
    mining: MiningConfig = field(default_factory=lambda: MiningConfig.window(depth=30, margin=None))
    dev_share: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("views", "decoder_layers", "epochs", "batch", "max_length", "negatives"):
            whole(getattr(self, name), name, minimum=1)
        if not self.learning_rate > 0 or not self.decoder_learning_rate > 0:
            raise InputError(
                f"learning rates must be > 0, got {self.learning_rate} and "
                f"{self.decoder_learning_rate}"
            )
        if not 0 <= self.warmup < 1 or not 0 <= self.dev_share < 1:
            raise InputError(
                f"warmup and dev_share must be in [0, 1), got {self.warmup} and {self.dev_share}"
            )
        if not self.orthogonality >= 0:
            raise InputError(f"orthogonality must be >= 0, got {self.orthogonality}")


def train_multiview(
    columns: dict[str, list[str]], settings: MultiViewTraining, progress: bool
) -> Any:
    """A :class:`MultiViewModel` trained on ``columns`` (query, positive, negative_1..n; one
    block of rows per epoch), in evaluation mode."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from densekit.encode.multiview import orthogonality_loss
    from densekit.encode.multiview_folder import accelerator, new_multiview

    torch.manual_seed(settings.seed)
    model = new_multiview(
        settings.base, settings.views, settings.max_length, settings.decoder_layers
    )
    model.to(accelerator()).train()
    optimizer = torch.optim.AdamW(
        [
            {"params": model.backbone.parameters(), "lr": settings.learning_rate},
            {"params": model.decoder.parameters(), "lr": settings.decoder_learning_rate},
        ],
        weight_decay=0.01,
    )
    batches = _batches(len(columns["query"]), settings)
    schedule = get_linear_schedule_with_warmup(
        optimizer, math.ceil(settings.warmup * len(batches)), len(batches)
    )
    candidates = [name for name in columns if name != "query"]
    bar = tqdm(batches, desc="mvp", unit="step", disable=not progress)
    for rows in bar:
        relevance = torch.stack(
            [
                model.relevance(columns["query"][row], [columns[c][row] for c in candidates])
                for row in rows
            ]
        )
        present = torch.ones(relevance.shape[:2], dtype=torch.bool, device=relevance.device)
        scores = model.scores(relevance, present)
        # The positive comes first.
        target = torch.zeros(len(rows), dtype=torch.long, device=relevance.device)
        listwise = torch.nn.functional.cross_entropy(scores, target)
        loss = listwise + settings.orthogonality * orthogonality_loss(relevance)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{listwise.item():.3f}")
    model.eval()
    return model


def _batches(rows: int, settings: MultiViewTraining) -> list[list[int]]:
    """Steps of ``batch`` rows, shuffled within each epoch's block of rows."""
    rng = np.random.default_rng(settings.seed)
    per_epoch = rows // settings.epochs
    steps = []
    for epoch in range(settings.epochs):
        order = rng.permutation(per_epoch) + epoch * per_epoch
        steps += [
            order[i : i + settings.batch].tolist() for i in range(0, per_epoch, settings.batch)
        ]
    return steps
