"""Train a ColBERT-style late-interaction model on a dataset's training judgements.

The model starts from a transformer (the bundled MiniLM by default) with a new projection to
``dimension`` (:class:`~densekit.encode.late_interaction.LateInteractionEncoder`). Each step
reads ``batch`` judged queries, each with a positive and ``negatives`` hard negatives mined
from a collection (BM25 and dense windows, known positives skipped: the reranker's groups), and
learns, by cross-entropy over MaxSim scores, to pick every query's positive out of all the
documents of the batch (its own negatives and the other queries' documents). Held-out queries
measure it after training: the share whose positive outscores all their negatives.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from densekit.encode.late_interaction import LateInteractionEncoder, LateInteractionSettings
from densekit.encode.registry import resolve_model
from densekit.errors import InputError
from densekit.evaluate.beir import BeirDataset
from densekit.files.durability import publish_folder, refuse_to_replace
from densekit.retrieve.collection import Collection
from densekit.train.checks import whole
from densekit.train.mining import MiningConfig
from densekit.train.reranker_data import TrainingGroups, groups_for
from densekit.train.result import TrainResult


@dataclass(frozen=True)
class LateInteractionTraining:
    base: str = "minilm"
    dimension: int = 128
    query_tokens: int = 32
    document_tokens: int = 180
    epochs: int = 1
    batch: int = 16  # queries per step
    negatives: int = 1  # mined per query and step, beside the batch's other documents
    learning_rate: float = 1e-5  # the transformer's; the new projection learns 10x faster
    mining: MiningConfig = field(default_factory=lambda: MiningConfig.window(depth=30, margin=None))
    dev_share: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch", "negatives", "dimension"):
            whole(getattr(self, name), name, minimum=1)
        if not self.learning_rate > 0:
            raise InputError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.dev_share < 1:
            raise InputError(f"dev_share must be in [0, 1), got {self.dev_share}")


@dataclass(frozen=True)
class LateInteractionReport(TrainResult):
    queries: int
    steps: int
    loss_first: float
    loss_last: float
    dev_positive_first: float | None  # held-out queries whose positive beats its negatives
    seconds: float
    settings: dict[str, Any]

    def summary(self) -> list[str]:
        dev = "" if self.dev_positive_first is None else f", dev {self.dev_positive_first:.3f}"
        return [
            f"trained {self.out}: {self.queries} queries, {self.steps} steps, loss "
            f"{self.loss_first:.3f} -> {self.loss_last:.3f}{dev} ({self.seconds:.0f} s)"
        ]


def maxsim_scores(queries: Any, query_kept: Any, documents: Any, document_kept: Any) -> Any:
    """MaxSim of every query with every document, as a (queries x documents) tensor: per
    query token its best kept document token, summed over the query's kept tokens."""
    import torch

    similarity = torch.einsum("qtd,nsd->qnts", queries, documents)
    similarity = similarity.masked_fill(~document_kept[None, :, None, :], float("-inf"))
    best = similarity.max(dim=3).values  # (queries, documents, query tokens)
    return (best * query_kept[:, None, :]).sum(dim=2)


def train_late_interaction(
    dataset: str | Path | BeirDataset,
    collection: str | Path | Collection,
    out: str | Path,
    *,
    split: str = "train",
    settings: LateInteractionTraining | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> LateInteractionReport:
    """Train on ``split`` of ``dataset`` with negatives mined from ``collection``; the model is
    written to ``out`` (loads with :class:`LateInteractionEncoder`)."""
    import torch
    from tqdm.auto import tqdm

    settings = settings or LateInteractionTraining()
    out = Path(out)
    refuse_to_replace(out, overwrite)
    started = time.perf_counter()
    _, groups = groups_for(dataset, collection, split, settings)
    torch.manual_seed(settings.seed)
    encoder = LateInteractionEncoder(
        resolve_model(settings.base).location,
        LateInteractionSettings(
            dimension=settings.dimension,
            query_tokens=settings.query_tokens,
            document_tokens=settings.document_tokens,
        ),
    )
    optimiser = torch.optim.AdamW(
        [
            {"params": encoder.model.parameters(), "lr": settings.learning_rate},
            {"params": encoder.projection.parameters(), "lr": 10 * settings.learning_rate},
        ]
    )
    rows = groups.rows(settings.negatives, settings.epochs)
    # Shuffled within each epoch: a query twice in one batch would be its own negative.
    rng, per_epoch = np.random.default_rng(settings.seed), len(groups.train)
    order = np.concatenate(
        [epoch * per_epoch + rng.permutation(per_epoch) for epoch in range(settings.epochs)]
    )
    losses: list[float] = []
    encoder.model.train()
    steps = range(0, len(order), settings.batch)
    for start in tqdm(steps, desc="training", unit="step", disable=not progress):
        chosen = order[start : start + settings.batch]
        loss = _step_loss(encoder, rows, chosen, settings.negatives)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    encoder.model.eval()
    report = LateInteractionReport(
        out=str(out),
        queries=len(groups.train),
        steps=len(losses),
        loss_first=round(losses[0], 4),
        loss_last=round(float(np.mean(losses[-5:])), 4),
        dev_positive_first=_dev_check(encoder, groups) if groups.dev else None,
        seconds=round(time.perf_counter() - started, 1),
        settings=asdict(settings) | {"mining": str(settings.mining)},
    )
    publish_folder(out, encoder.save)
    return report


def _step_loss(
    encoder: LateInteractionEncoder, rows: dict[str, list[str]], chosen: np.ndarray, negatives: int
) -> Any:
    import torch

    queries = [rows["query"][i] for i in chosen]
    # Per query: its positive, then its negatives; the batch's documents in that order.
    documents = [
        rows[column][i] for i in chosen for column in ("positive", *_negative_columns(negatives))
    ]
    query_vectors, query_kept = encoder.token_vectors(queries, query=True)
    document_vectors, document_kept = encoder.token_vectors(documents, query=False)
    scores = maxsim_scores(query_vectors, query_kept, document_vectors, document_kept)
    targets = torch.arange(len(queries)) * (1 + negatives)
    return torch.nn.functional.cross_entropy(scores, targets.to(scores.device))


def _negative_columns(negatives: int) -> tuple[str, ...]:
    return tuple(f"negative_{i}" for i in range(1, negatives + 1))


def _dev_check(encoder: LateInteractionEncoder, groups: TrainingGroups) -> float:
    """The share of held-out queries whose first positive outscores each of its negatives."""
    from densekit.index.late_interaction import TokenVectors

    wins = 0
    for group in groups.dev:
        texts = [groups.texts[group.positives[0]], *(groups.texts[d] for d in group.negatives)]
        stored = TokenVectors.from_documents(encoder.encode_documents(texts))
        (query,) = encoder.encode_queries([group.query])
        scores = stored.maxsim(query, np.arange(len(texts)))
        wins += bool(scores[0] > scores[1:].max())
    return round(wins / len(groups.dev), 4)
