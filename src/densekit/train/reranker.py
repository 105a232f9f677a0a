"""Fine-tune a cross-encoder reranker on a dataset's training judgements.

Each judged query gives (query, positive, 1) pairs and (query, hard negative, 0) pairs, the
negatives mined from a collection of the dataset's corpus (BM25 and dense, known positives
skipped). The model starts from a bi-encoder's transformer (the bundled MiniLM by default) with
a fresh one-logit head, and trains with sentence-transformers' CrossEncoderTrainer and binary
cross-entropy (positives up-weighted by the negatives per positive). The result is a normal
CrossEncoder folder: ``[[rerank]] model = "DIR"`` in a pipeline.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from densekit.encode.registry import resolve_model
from densekit.errors import InputError, MissingDependencyError
from densekit.evaluate.beir import BeirDataset, load_beir
from densekit.store.collection import Collection
from densekit.store.durability import fsync_tree
from densekit.train.negatives import MiningConfig, mine_negatives

TRAINING_FILE = "densekit_training.json"


@dataclass(frozen=True)
class RerankerTraining:
    """How to train; the defaults fit SciFact's train split on a CPU in minutes."""

    base: str = "minilm"
    epochs: float = 1.0
    batch: int = 16
    learning_rate: float = 3e-5
    warmup: float = 0.1
    max_length: int = 256
    mining: MiningConfig = field(default_factory=lambda: MiningConfig(per_query=3))
    seed: int = 0


@dataclass(frozen=True)
class TrainingReport:
    out: str
    queries: int
    pairs: int
    positives: int
    negatives: int
    skipped_queries: int
    unknown_documents: int
    seconds: float
    settings: dict[str, Any]

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
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out}: exists and is not empty; pass --overwrite to replace it")
    data = dataset if isinstance(dataset, BeirDataset) else load_beir(dataset, split)
    opened = collection if isinstance(collection, Collection) else Collection(collection)
    started = time.perf_counter()
    examples, counts = _examples(data, opened, settings.mining)
    model = _train(examples, settings, progress)
    report = TrainingReport(
        out=str(out),
        seconds=round(time.perf_counter() - started, 1),
        settings=_settings_dict(settings),
        **counts,
    )
    # Written beside the target and renamed: an interrupted run leaves no half model at ``out``.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(str(staging))
        (staging / TRAINING_FILE).write_text(
            json.dumps({"dataset": data.name, "split": data.split, **report.to_dict()}, indent=2)
        )
        staging.chmod(0o755)
        fsync_tree(staging)
        # The old model moves aside until the new one is in place: a crash keeps one of them.
        previous = out.with_name(f".{out.name}.previous") if out.exists() else None
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(out, previous)
        os.replace(staging, out)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _examples(
    data: BeirDataset, collection: Collection, mining: MiningConfig
) -> tuple[dict[str, list], dict[str, int]]:
    """(query, passage, label) columns, and what was used and skipped."""
    stored = set(collection.doc_ids)
    positives: dict[str, set[str]] = {}
    unknown = 0
    for query_id, judged in data.qrels.items():
        if query_id not in data.queries:
            continue
        relevant = {doc for doc, grade in judged.items() if grade > 0}
        unknown += len(relevant - stored)
        if relevant & stored:
            positives[query_id] = relevant & stored
    skipped = len(data.queries) - len(positives)
    if not positives:
        raise InputError(
            f"{data.root}: no {data.split} query has a relevant document in "
            f"{collection.directory}; is the collection built from this dataset's corpus?"
        )
    queries = {query_id: data.queries[query_id] for query_id in positives}
    negatives = mine_negatives(collection, queries, positives, mining)
    columns: dict[str, list] = {"query": [], "passage": [], "label": []}
    needed = {doc for docs in positives.values() for doc in docs}
    needed |= {doc for docs in negatives.values() for doc in docs}
    texts = {doc: collection.documents.get(doc).content for doc in needed}  # type: ignore[union-attr]
    counts = {"positives": 0, "negatives": 0}
    for query_id, text in queries.items():
        for doc, label in [
            *((doc, 1.0) for doc in sorted(positives[query_id])),
            *((doc, 0.0) for doc in negatives[query_id]),
        ]:
            columns["query"].append(text)
            columns["passage"].append(texts[doc])
            columns["label"].append(label)
            counts["positives" if label else "negatives"] += 1
    return columns, {
        "queries": len(queries),
        "pairs": len(columns["label"]),
        "skipped_queries": skipped,
        "unknown_documents": unknown,
        **counts,
    }


def _train(columns: dict[str, list], settings: RerankerTraining, progress: bool) -> Any:
    try:
        from datasets import Dataset
        from sentence_transformers import CrossEncoder
        from sentence_transformers.cross_encoder import (
            CrossEncoderTrainer,
            CrossEncoderTrainingArguments,
        )
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    except ImportError:
        raise MissingDependencyError("datasets", "train") from None
    import torch

    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    torch.manual_seed(settings.seed)
    spec = resolve_model(settings.base)
    model = CrossEncoder(spec.location, num_labels=1, max_length=settings.max_length, device="cpu")
    negatives_per_positive = max(
        1.0, columns["label"].count(0.0) / max(1, columns["label"].count(1.0))
    )
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(negatives_per_positive))
    with tempfile.TemporaryDirectory(prefix="densekit-train-") as scratch:
        arguments = CrossEncoderTrainingArguments(
            output_dir=scratch,
            num_train_epochs=settings.epochs,
            per_device_train_batch_size=settings.batch,
            learning_rate=settings.learning_rate,
            **_warmup(settings.warmup),
            seed=settings.seed,
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=not progress,
            use_cpu=True,
        )
        trainer = CrossEncoderTrainer(
            model=model, args=arguments, train_dataset=Dataset.from_dict(columns), loss=loss
        )
        trainer.train()
    return model


def _warmup(share: float) -> dict[str, float]:
    """transformers 5 takes the warm-up share as a float ``warmup_steps``; 4 as ``warmup_ratio``."""
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"warmup_steps": share} if major >= 5 else {"warmup_ratio": share}


def _settings_dict(settings: RerankerTraining) -> dict[str, Any]:
    data = asdict(settings)
    data["mining"]["retrievers"] = list(settings.mining.retrievers)
    return data
