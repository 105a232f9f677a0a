"""Fine-tune a bi-encoder on a dataset's judgements with a recipe (sentence-transformers'
trainer, densekit's losses), resumable, and saved as a model folder `densekit index --model DIR`
takes.

Checkpoints go to a hidden folder beside the output (``.NAME.checkpoints``) with the run's
description; running the same command again after an interruption resumes from the latest
one, and a run with another recipe, data or base is refused until ``restart``. The finished
model is published atomically with a card (``densekit_training.json``: data, recipe, dev
metrics before and after).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from densekit.encode.registry import resolve_model
from densekit.errors import InputError, MissingDependencyError
from densekit.evaluate.beir import BeirDataset, load_beir
from densekit.files.durability import atomic_write_text, publish_folder, refuse_to_replace
from densekit.retrieve.collection import Collection
from densekit.train.checkpoints import prepare_checkpoints
from densekit.train.pairs import Examples, read_triplets, training_examples
from densekit.train.recipe import DistillRecipe, Recipe
from densekit.train.recipe_loss import build_loss
from densekit.train.result import CARD_FILE, TrainResult
from densekit.train.trainer_arguments import checkpointed_arguments

DEV_BEFORE_FILE = "densekit_dev_before.json"


@dataclass(frozen=True)
class TrainConfig:
    """One bi-encoder training: the data (a BEIR dataset's ``split``, negatives mined from
    ``collection``; or a ``triplets`` file), the ``base`` model, the ``recipe`` (TOML:
    :meth:`from_toml`), and the folder ``out``."""

    dataset: str | Path | BeirDataset | None
    out: str | Path
    base: str = "minilm"
    split: str = "train"
    recipe: Recipe = field(default_factory=Recipe)
    collection: str | Path | Collection | None = None
    triplets: str | Path | None = None
    overwrite: bool = False
    restart: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.recipe is None:  # train_model(..., recipe=None): the default recipe
            object.__setattr__(self, "recipe", Recipe())

    @classmethod
    def from_toml(
        cls, path: str | Path, dataset: str | Path | None, out: str | Path, **options: Any
    ) -> TrainConfig:
        return cls(dataset, out, recipe=Recipe.from_toml(path), **options)


@dataclass(frozen=True)
class ModelTrainingReport(TrainResult):
    base: str
    queries: int
    rows: int
    skipped_queries: int
    dropped_negatives: int
    dev_queries: int
    dev_before: float | None  # dev nDCG@10 of the base model
    dev_after: float | None  # of the model kept: the best epoch's
    dev_by_epoch: list[float] | None
    best_epoch: int | None
    resumed_from: str | None
    seconds: float
    recipe: dict[str, Any]

    def warnings(self) -> list[str]:
        if self.skipped_queries:
            return [f"{self.skipped_queries} judged queries have no relevant document; skipped"]
        return []

    def summary(self) -> list[str]:
        resumed = f", resumed from {self.resumed_from}" if self.resumed_from else ""
        lines = [
            f"trained {self.out} from {self.base}: {self.queries} queries, {self.rows} "
            f"rows, {self.seconds:.0f} s{resumed}"
        ]
        if self.dev_after is not None:
            before = f"{self.dev_before:.4f} -> " if self.dev_before is not None else ""
            lines.append(
                f"dev nDCG@10 ({self.dev_queries} held-out queries): {before}{self.dev_after:.4f}"
            )
        if self.dev_by_epoch and self.best_epoch is not None:
            scores = ", ".join(f"{score:.4f}" for score in self.dev_by_epoch)
            lines.append(f"dev by epoch: {scores}; kept epoch {self.best_epoch}")
        return lines


def train_model(
    config: TrainConfig | str | Path | BeirDataset | None,
    out: str | Path | None = None,
    **options: Any,
) -> ModelTrainingReport:
    """Train ``config.base`` on ``config.split`` of ``config.dataset`` by ``config.recipe``
    into the folder ``config.out``; with ``triplets`` (a pairs/triplets JSONL file, e.g. from
    `densekit mine-negatives`) the rows come from that file instead, and there is no dev
    evaluation. ``train_model(dataset, out, recipe=...)`` is short for
    ``train_model(TrainConfig(dataset, out, recipe=...))``."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig(config, out if out is not None else "", **options)
    dataset, collection, triplets = config.dataset, config.collection, config.triplets
    recipe, restart, progress = config.recipe, config.restart, config.progress
    out = Path(config.out)
    refuse_to_replace(out, config.overwrite)
    started = time.perf_counter()
    spec = resolve_model(config.base)
    if triplets is not None:
        examples = read_triplets(Path(triplets))
        source = str(triplets)
    else:
        if dataset is None:
            raise InputError("give a dataset directory, or --triplets FILE")
        data = dataset if isinstance(dataset, BeirDataset) else load_beir(dataset, config.split)
        source = f"{data.root} ({data.split})"
        opened = (
            collection
            if collection is None or isinstance(collection, Collection)
            else Collection(collection)
        )
        examples = training_examples(
            data,
            recipe.data,
            collection=opened,
            dev_share=recipe.train.dev_share,
            seed=recipe.train.seed,
        )
    if not examples.rows:
        raise InputError(f"{source}: no training rows: no query got a mined negative; widen ranks")
    rows = hashlib.sha256(json.dumps([asdict(row) for row in examples.rows]).encode())
    run = {
        "data": source,
        "base": spec.location,
        "recipe": recipe.to_dict(),
        "rows": len(examples.rows),
        "rows_sha256": rows.hexdigest(),  # other rows (another collection, file) never resume
    }
    checkpoints = out.with_name(f".{out.name}.checkpoints")
    resume = prepare_checkpoints(checkpoints, run, restart)
    fitted = _fit(spec, examples, recipe, checkpoints, resume, progress)
    model = fitted.model
    report = ModelTrainingReport(
        out=str(out),
        base=spec.name,
        queries=examples.queries,
        rows=len(examples.rows),
        skipped_queries=examples.skipped_queries,
        dropped_negatives=examples.dropped_negatives,
        dev_queries=len(examples.dev),
        dev_before=fitted.dev_before,
        dev_after=fitted.dev_after,
        dev_by_epoch=fitted.dev_by_epoch,
        best_epoch=fitted.best_epoch,
        resumed_from=resume,
        seconds=round(time.perf_counter() - started, 1),
        recipe=recipe.to_dict(),
    )

    def write(folder: Path) -> None:
        model.save_pretrained(str(folder))
        card = {"data": source, **report.to_dict()}
        (folder / CARD_FILE).write_text(json.dumps(card, indent=2))

    publish_folder(out, write)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return report


@dataclass(frozen=True)
class _Fitted:
    model: Any
    dev_before: float | None
    dev_after: float | None
    dev_by_epoch: list[float] | None = None
    best_epoch: int | None = None


def _fit(
    spec: Any,
    examples: Examples,
    recipe: Recipe,
    checkpoints: Path,
    resume: str | None,
    progress: bool,
) -> _Fitted:
    try:
        from datasets import Dataset
        from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
        from sentence_transformers.base.sampler import BatchSamplers
    except ImportError:
        raise MissingDependencyError("datasets", "train") from None
    import torch

    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    settings = recipe.train
    torch.manual_seed(settings.seed)
    model = SentenceTransformer(spec.location)
    model.max_seq_length = settings.max_length
    columns = examples.columns(examples.negatives_per_row)
    if recipe.loss.distill is not None:
        columns["label"] = teacher_scores(columns, recipe.loss.distill)
    evaluator = _dev_evaluator(examples, spec)
    dev_before = _dev_before(evaluator, model, checkpoints)
    # Dev evaluation encodes the whole corpus: at the end always, during training on request.
    evaluate_during = evaluator is not None and settings.eval_steps > 0
    arguments = checkpointed_arguments(
        checkpoints,
        settings,
        progress=progress,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        eval_strategy="steps" if evaluate_during else "no",
        eval_steps=settings.eval_steps or None,
        prompts=_prompts(spec, columns),
    )
    keep_best = None
    if evaluator is not None:
        from densekit.train.early_stopping import KeepBestOnDev

        score = lambda trained: _ndcg(evaluator, trained)  # noqa: E731
        keep_best = KeepBestOnDev(model, score, checkpoints, settings.early_stopping)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=arguments,
        train_dataset=Dataset.from_dict(columns),
        loss=build_loss(model, recipe.loss, settings.seed),
        evaluator=evaluator if evaluate_during else None,
        callbacks=[keep_best] if keep_best is not None else None,
    )
    # The trainer prints its closing metrics to stdout, where a --json report goes.
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train(resume_from_checkpoint=resume)
    if keep_best is None or keep_best.best_epoch is None:
        return _Fitted(model, dev_before, None)
    best = keep_best.best_model(SentenceTransformer)
    best.max_seq_length = settings.max_length
    scores = keep_best.scores
    return _Fitted(best, dev_before, max(scores), scores, keep_best.best_epoch)


def teacher_scores(columns: dict[str, list[str]], distill: DistillRecipe) -> list[list[float]]:
    """The teacher's raw score of each row's positive and negatives, in column order."""
    from densekit.retrieve.rerankers import CrossEncoderReranker

    candidates = [name for name in columns if name != "anchor"]
    if len(candidates) < 2:
        raise InputError("distillation needs rows with negatives; these rows have none")
    try:
        teacher = CrossEncoderReranker(distill.teacher, batch=distill.batch)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"loss.distill.teacher: could not load {distill.teacher!r}: {exc}"
        ) from None
    pairs = [
        (query, columns[name][row])
        for row, query in enumerate(columns["anchor"])
        for name in candidates
    ]
    scores = teacher.score(pairs).reshape(len(columns["anchor"]), len(candidates))
    return scores.astype(float).tolist()


def _dev_evaluator(examples: Examples, spec: Any) -> Any:
    if not examples.dev:
        return None
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )

    return InformationRetrievalEvaluator(
        queries=examples.dev_queries,
        corpus=examples.texts,
        relevant_docs={q: set(docs) for q, docs in examples.dev.items()},
        name="dev",
        ndcg_at_k=[10],
        mrr_at_k=[10],
        accuracy_at_k=[1],
        precision_recall_at_k=[10],
        map_at_k=[100],
        show_progress_bar=False,
        query_prompt=spec.query_prompt or None,
        corpus_prompt=spec.document_prompt or None,
    )


def _dev_before(evaluator: Any, model: Any, checkpoints: Path) -> float | None:
    """The base model's dev score, measured once per run and kept with its checkpoints."""
    if evaluator is None:
        return None
    kept = checkpoints / DEV_BEFORE_FILE
    if kept.exists():
        return float(json.loads(kept.read_text()))
    score = _ndcg(evaluator, model)
    atomic_write_text(kept, json.dumps(score))
    return score


def _ndcg(evaluator: Any, model: Any) -> float:
    with contextlib.redirect_stdout(sys.stderr):
        results = evaluator(model)
    return round(float(next(v for k, v in results.items() if k.endswith("ndcg@10"))), 4)


def _prompts(spec: Any, columns: dict[str, list[str]]) -> dict[str, str] | None:
    if not (spec.query_prompt or spec.document_prompt):
        return None
    return {
        name: spec.query_prompt if name == "anchor" else spec.document_prompt for name in columns
    }
