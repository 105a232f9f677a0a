"""Choose the epochs by the dev split: score dev nDCG@10 after every epoch, keep the best model,
stop once ``patience`` epochs in a row have not beaten it.

The best model so far is saved beside the checkpoints with its scores, so a resumed training
still knows it (and what the epochs before the interruption scored).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from densekit.files.durability import atomic_write_text, publish_folder

BEST_FOLDER = "best-on-dev"
SCORES_FILE = "densekit_dev_scores.json"


class KeepBestOnDev(TrainerCallback):
    """A trainer callback: ``score(model)`` is the dev nDCG@10 of the model being trained."""

    def __init__(
        self, model: Any, score: Callable[[Any], float], folder: Path, patience: int
    ) -> None:
        self.model = model
        self.score = score
        self.best_folder = folder / BEST_FOLDER
        self.patience = patience
        kept = self.best_folder / SCORES_FILE
        self.scores: list[float] = json.loads(kept.read_text()) if kept.exists() else []

    @property
    def best_epoch(self) -> int | None:
        """The epoch (from 1) whose model scored best on dev."""
        if not self.scores:
            return None
        return max(range(len(self.scores)), key=lambda i: (self.scores[i], -i)) + 1

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        score = self.score(self.model)
        self.scores.append(score)
        if self.best_epoch == len(self.scores):
            scores = list(self.scores)

            def write(folder: Path) -> None:
                self.model.save_pretrained(str(folder))
                (folder / SCORES_FILE).write_text(json.dumps(scores))

            publish_folder(self.best_folder, write)
        else:
            atomic_write_text(self.best_folder / SCORES_FILE, json.dumps(self.scores))
        since_best = len(self.scores) - (self.best_epoch or 0)
        if self.patience and since_best >= self.patience:
            control.should_training_stop = True
        return control

    def best_model(self, load: Callable[[str], Any]) -> Any:
        """The best model on dev (``load`` opens a saved one), or the one trained when the
        last epoch was the best."""
        if self.best_epoch in (None, len(self.scores)):
            return self.model
        return load(str(self.best_folder))
