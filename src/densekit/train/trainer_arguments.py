"""Arguments for Hugging Face trainers: what differs between the supported transformers, and
what densekit's checkpointed sentence-transformers trainings share."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


def warmup_arguments(share: float) -> dict[str, float]:
    """transformers 5 takes the warm-up share as a float ``warmup_steps``; 4 as ``warmup_ratio``."""
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"warmup_steps": share} if major >= 5 else {"warmup_ratio": share}


class CheckpointedTraining(Protocol):
    """What a checkpointed training's settings name (``TrainRecipe``, ``DefSentTraining``)."""

    epochs: int
    batch: int
    learning_rate: float
    warmup: float
    seed: int
    checkpoint_steps: int


def checkpointed_arguments(
    checkpoints: Path, settings: CheckpointedTraining, *, progress: bool, **more: Any
) -> Any:
    """sentence-transformers training arguments for ``settings`` that keep the latest
    checkpoint every ``checkpoint_steps`` in ``checkpoints`` (for resuming) and log nowhere;
    ``more`` adds to them."""
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch,
        learning_rate=settings.learning_rate,
        **warmup_arguments(settings.warmup),
        seed=settings.seed,
        save_strategy="steps",
        save_steps=settings.checkpoint_steps,
        save_total_limit=1,
        logging_strategy="no",
        report_to="none",
        disable_tqdm=not progress,
        dataloader_pin_memory=torch.cuda.is_available(),
        **more,
    )
