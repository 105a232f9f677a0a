"""Fine-tune a reranker on a dataset's training judgements: a cross-encoder (below) or, with
:class:`~densekit.train.multiview.MultiViewTraining` settings, an MVP listwise reranker.

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
import functools
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from densekit.encode.registry import resolve_model
from densekit.errors import InputError, MissingDependencyError
from densekit.evaluate.beir import BeirDataset
from densekit.files.durability import publish_folder, refuse_to_replace
from densekit.retrieve.collection import Collection
from densekit.tomlfile import read_toml, refuse_unknown_keys
from densekit.train.checks import whole
from densekit.train.mining import MiningConfig
from densekit.train.multiview import MultiViewTraining, train_multiview
from densekit.train.recipe import build_settings, settings_table
from densekit.train.reranker_data import Group, TrainingGroups, groups_for
from densekit.train.result import CARD_FILE, TrainResult
from densekit.train.trainer_arguments import warmup_arguments

RERANKER_KINDS = ("cross-encoder", "mvp")


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
    # Ranks 1-30 of each retriever, unfiltered; per query, ``negatives`` x ``epochs`` are mined.
    mining: MiningConfig = field(default_factory=lambda: MiningConfig.window(depth=30, margin=None))
    dev_share: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch", "max_length", "negatives"):
            whole(getattr(self, name), name, minimum=1)
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
class RerankerConfig:
    """One reranker training: ``split`` of ``dataset``, negatives mined from ``collection``,
    ``settings`` (base model and recipe), and the folder ``out``."""

    dataset: str | Path | BeirDataset
    collection: str | Path | Collection
    out: str | Path
    split: str = "train"
    settings: RerankerTraining | MultiViewTraining = field(default_factory=RerankerTraining)
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.settings is None:  # train_reranker(..., settings=None): the defaults
            object.__setattr__(self, "settings", RerankerTraining())

    @classmethod
    def from_toml(
        cls,
        path: str | Path,
        dataset: str | Path | BeirDataset,
        collection: str | Path | Collection,
        out: str | Path,
        **options: Any,
    ) -> RerankerConfig:
        """Settings from a TOML file: ``[training]`` (the fields of :class:`RerankerTraining`,
        or with ``kind = "mvp"`` of :class:`MultiViewTraining`) and ``[mining]`` (of
        :class:`MiningConfig`); what a table leaves out keeps its default."""
        data = read_toml(Path(path), "reranker settings")
        try:
            refuse_unknown_keys(data, {"training", "mining"}, "the settings")
            training = dict(settings_table(data, "training"))
            if "mining" in data:
                mining = build_settings(MiningConfig, settings_table(data, "mining"), "[mining]")
                training["mining"] = mining
            kind = training.pop("kind", "cross-encoder")
            if kind not in RERANKER_KINDS:
                raise InputError(
                    f"[training] kind: unknown {kind!r}; choose one of {', '.join(RERANKER_KINDS)}"
                )
            shape = MultiViewTraining if kind == "mvp" else RerankerTraining
            settings = build_settings(shape, training, "[training]")
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        return cls(dataset, collection, out, settings=settings, **options)


@dataclass(frozen=True)
class TrainingReport(TrainResult):
    queries: int
    rows: int
    positives: int
    negatives: int
    skipped_queries: int
    unknown_documents: int
    seconds: float
    settings: dict[str, Any]
    dev: DevCheck | None = None

    def warnings(self) -> list[str]:
        found = []
        if self.skipped_queries:
            found.append(
                f"{self.skipped_queries} queries have no relevant document in the collection"
            )
        if self.unknown_documents:
            found.append(
                f"{self.unknown_documents} judged documents are not in the collection; skipped"
            )
        if self.dev is not None and not self.dev.learned:
            found.append(
                f"on {self.dev.queries} held-out queries the model orders only "
                f"{self.dev.pair_accuracy:.0%} of positive/negative pairs correctly; it has not "
                "learned to rank: train longer (--epochs) or with another --lr"
            )
        return found

    def summary(self) -> list[str]:
        lines = [
            f"trained {self.out}: {self.queries} queries, {self.rows} rows "
            f"({self.positives} positive and {self.negatives} negative passages), "
            f"in {self.seconds:.0f} s"
        ]
        if self.dev is not None:
            lines.append(
                f"held-out check: {self.dev.queries} queries, pair accuracy "
                f"{self.dev.pair_accuracy:.3f}, MRR {self.dev.mrr:.3f}"
            )
        return lines


def train_reranker(
    config: RerankerConfig | str | Path | BeirDataset,
    collection: str | Path | Collection | None = None,
    out: str | Path | None = None,
    **options: Any,
) -> TrainingReport:
    """Train a reranker on ``config.split`` of ``config.dataset`` with negatives from
    ``config.collection``. ``train_reranker(dataset, collection, out, settings=...)`` is short
    for ``train_reranker(RerankerConfig(dataset, collection, out, settings=...))``."""
    if not isinstance(config, RerankerConfig):
        if collection is None or out is None:
            raise InputError("train_reranker needs a dataset, a collection and an output folder")
        config = RerankerConfig(config, collection, out, **options)
    settings, dataset, collection = config.settings, config.dataset, config.collection
    out = Path(config.out)
    refuse_to_replace(out, config.overwrite)
    started = time.perf_counter()
    data, groups = groups_for(dataset, collection, config.split, settings)
    rows = groups.rows(settings.negatives, settings.epochs)
    if isinstance(settings, MultiViewTraining):
        model = train_multiview(rows, settings, config.progress)
        score = model.score_list
    else:
        model = _train(rows, settings, config.progress)
        score = functools.partial(_cross_encoder_scores, model)
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
        dev=dev_check(score, groups, settings.negatives) if groups.dev else None,
    )
    kind = "mvp" if isinstance(settings, MultiViewTraining) else "cross-encoder"
    card = {"kind": kind, "dataset": data.name, "split": data.split, **report.to_dict()}
    _save(model, out, card)
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

    from densekit.train.losses.listwise import HardNegativeSoftmaxLoss

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


def _cross_encoder_scores(model: Any, query: str, passages: list[str]) -> np.ndarray:
    pairs = [(query, passage) for passage in passages]
    return np.asarray(model.predict(pairs, show_progress_bar=False)).reshape(len(passages))


def dev_check(
    score: Callable[[str, list[str]], np.ndarray], groups: TrainingGroups, negatives: int
) -> DevCheck:
    """How ``score`` (query, passages -> scores) ranks each held-out query's positives among
    its first mined negatives."""
    accuracies, reciprocal_ranks = [], []
    for group in groups.dev:
        shown = _dev_candidates(group, negatives)
        scores = np.asarray(
            score(group.query, [groups.texts[doc] for doc in shown]), dtype=np.float64
        )
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
        if card["kind"] == "mvp":
            from densekit.encode.multiview_folder import save_multiview

            save_multiview(model, folder)
        else:
            model.save_pretrained(str(folder))
        (folder / CARD_FILE).write_text(json.dumps(card, indent=2))

    publish_folder(out, write)


def _settings_dict(settings: RerankerTraining | MultiViewTraining) -> dict[str, Any]:
    data = asdict(settings)
    mining = settings.mining
    # The mining window as --depth and --skip set it; the count is negatives x epochs.
    data["mining"] = {
        "depth": mining.depth,
        "skip": mining.skip,
        "retrievers": list(mining.retrievers),
        "seed": settings.seed,
    }
    data["mining"] |= {"margin": mining.margin} if mining.margin is not None else {}
    data["mining"] |= {"cross_encoder": mining.cross_encoder} if mining.cross_encoder else {}
    return data
