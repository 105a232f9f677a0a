"""Fine-tune a cross-encoder reranker on a dataset's training judgements.

The model starts from a bi-encoder's transformer (the bundled MiniLM by default): query and
passage are read together, their token states mean-pooled (the pooling the bi-encoder was
trained with, so training starts from meaningful features rather than an untrained [CLS] head)
and mapped to one relevance logit. It learns, per judged query, to pick the positive out of
hard negatives mined from a collection (BM25 and dense, known positives skipped), with a softmax
over raw logits (:class:`HardNegativeSoftmaxLoss`) in sentence-transformers' CrossEncoderTrainer.
Pointwise binary cross-entropy from a fresh [CLS] head stays near a constant score on a few
hundred queries; this recipe ranks. Held-out queries measure it after training. The result is a
normal CrossEncoder folder: ``[[rerank]] model = "DIR"`` in a pipeline.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from densekit.encode.registry import resolve_model
from densekit.errors import InputError, MissingDependencyError
from densekit.evaluate.beir import BeirDataset, load_beir
from densekit.files.durability import publish_folder, refuse_to_replace
from densekit.store.collection import Collection
from densekit.train.negatives import MiningConfig
from densekit.train.reranker_data import Group, TrainingGroups, training_groups
from densekit.train.trainer_arguments import warmup_arguments

TRAINING_FILE = "densekit_training.json"


@dataclass(frozen=True)
class RerankerTraining:
    """How to train. The defaults train on SciFact's 809 train queries in about 20 minutes on
    a 2-core CPU; on held-out train queries they were the best of the recipes tried for that
    budget (pooling, loss, learning rate, negatives and epochs)."""

    base: str = "minilm"
    epochs: int = 3
    batch: int = 4  # queries per step, each read with its positive and negatives
    learning_rate: float = 1e-4
    warmup: float = 0.1
    max_length: int = 256
    negatives: int = 3  # per query and epoch, fresh each epoch
    mining: MiningConfig = field(default_factory=MiningConfig)
    dev_share: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch", "max_length", "negatives"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name} must be a whole number of at least 1, got {value!r}")
        if not self.learning_rate > 0 or not 0 <= self.warmup < 1:
            raise InputError(
                f"learning_rate must be > 0 and warmup in [0, 1), got {self.learning_rate} "
                f"and {self.warmup}"
            )
        if not 0 <= self.dev_share < 1:
            raise InputError(f"dev_share must be in [0, 1), got {self.dev_share}")


@dataclass(frozen=True)
class DevCheck:
    """How the trained model ranks held-out queries' positives among their mined negatives."""

    queries: int
    pair_accuracy: float  # share of (positive, negative) pairs ordered correctly
    mrr: float  # of the first positive

    @property
    def learned(self) -> bool:
        return self.pair_accuracy > 0.6


@dataclass(frozen=True)
class TrainingReport:
    out: str
    queries: int
    rows: int
    positives: int
    negatives: int
    skipped_queries: int
    unknown_documents: int
    seconds: float
    settings: dict[str, Any]
    dev: DevCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_reranker(
    dataset: str | Path | BeirDataset,
    collection: str | Path | Collection,
    out: str | Path,
    *,
    split: str = "train",
    settings: RerankerTraining | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> TrainingReport:
    """Train a reranker on ``split`` of ``dataset`` with negatives from ``collection``."""
    settings = settings or RerankerTraining()
    out = Path(out)
    refuse_to_replace(out, overwrite)
    data = dataset if isinstance(dataset, BeirDataset) else load_beir(dataset, split)
    opened = collection if isinstance(collection, Collection) else Collection(collection)
    started = time.perf_counter()
    groups = training_groups(
        data,
        opened,
        negatives=settings.negatives,
        epochs=settings.epochs,
        mining=settings.mining,
        dev_share=settings.dev_share,
    )
    rows = groups.rows(settings.negatives, settings.epochs)
    model = _train(rows, settings, progress)
    report = TrainingReport(
        out=str(out),
        queries=len(groups.train),
        rows=len(rows["query"]),
        positives=len({doc for group in groups.train for doc in group.positives}),
        negatives=len({doc for group in groups.train for doc in group.negatives}),
        skipped_queries=groups.skipped_queries,
        unknown_documents=groups.unknown_documents,
        seconds=round(time.perf_counter() - started, 1),
        settings=_settings_dict(settings),
        dev=_dev_check(model, groups, settings.negatives) if groups.dev else None,
    )
    _save(model, out, {"dataset": data.name, "split": data.split, **report.to_dict()})
    return report


def _train(columns: dict[str, list[str]], settings: RerankerTraining, progress: bool) -> Any:
    try:
        from datasets import Dataset
        from sentence_transformers.cross_encoder import (
            CrossEncoderTrainer,
            CrossEncoderTrainingArguments,
        )
    except ImportError:
        raise MissingDependencyError("datasets", "train") from None
    import torch

    from densekit.train.ranking_loss import HardNegativeSoftmaxLoss

    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    torch.manual_seed(settings.seed)
    model = mean_pooled_cross_encoder(resolve_model(settings.base).location, settings.max_length)
    with tempfile.TemporaryDirectory(prefix="densekit-train-") as scratch:
        arguments = CrossEncoderTrainingArguments(
            output_dir=scratch,
            num_train_epochs=1,  # the rows already hold one pass per epoch, fresh negatives each
            per_device_train_batch_size=settings.batch,
            learning_rate=settings.learning_rate,
            **warmup_arguments(settings.warmup),
            seed=settings.seed,
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=not progress,
            dataloader_pin_memory=torch.cuda.is_available(),
        )
        trainer = CrossEncoderTrainer(
            model=model,
            args=arguments,
            train_dataset=Dataset.from_dict(columns),
            loss=HardNegativeSoftmaxLoss(model),
        )
        # The trainer prints its closing metrics to stdout, where a --json report goes.
        with contextlib.redirect_stdout(sys.stderr):
            trainer.train()
    return model


def mean_pooled_cross_encoder(location: str, max_length: int) -> Any:
    """A CrossEncoder of ``location``'s transformer, mean pooling and a one-logit linear head;
    scores are raw logits (no sigmoid), so they blend linearly with retrieval scores."""
    import torch
    from sentence_transformers import CrossEncoder
    from sentence_transformers.base.modules import Dense, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    transformer = Transformer(
        location,
        transformer_task="feature-extraction",
        processor_kwargs={"model_max_length": max_length},
    )
    width = transformer.get_embedding_dimension()
    head = Dense(width, 1, activation_function=None, module_output_name="scores")
    return CrossEncoder(
        modules=[transformer, Pooling(width, "mean"), head],
        activation_fn=torch.nn.Identity(),
    )


def _dev_check(model: Any, groups: TrainingGroups, negatives: int) -> DevCheck:
    accuracies, reciprocal_ranks = [], []
    for group in groups.dev:
        shown = _dev_candidates(group, negatives)
        scores = np.asarray(
            model.predict(
                [(group.query, groups.texts[doc]) for doc in shown], show_progress_bar=False
            ),
            dtype=np.float64,
        ).reshape(len(shown))
        relevant = np.array([doc in group.positives for doc in shown])
        wins = scores[relevant][:, None] > scores[~relevant][None, :]
        accuracies.append(float(wins.mean()))
        order = np.argsort(-scores, kind="stable")
        reciprocal_ranks.append(1.0 / (1 + int(np.flatnonzero(relevant[order])[0])))
    return DevCheck(
        queries=len(groups.dev),
        pair_accuracy=round(float(np.mean(accuracies)), 4),
        mrr=round(float(np.mean(reciprocal_ranks)), 4),
    )


def _dev_candidates(group: Group, negatives: int) -> list[str]:
    return [*group.positives, *group.negatives[: 2 * negatives + 1]]


def _save(model: Any, out: Path, card: dict[str, Any]) -> None:
    def write(folder: Path) -> None:
        model.save_pretrained(str(folder))
        (folder / TRAINING_FILE).write_text(json.dumps(card, indent=2))

    publish_folder(out, write)


def _settings_dict(settings: RerankerTraining) -> dict[str, Any]:
    data = asdict(settings)
    data["mining"]["retrievers"] = list(settings.mining.retrievers)
    del data["mining"]["per_query"]  # set from negatives x epochs
    return data
