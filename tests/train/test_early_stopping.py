"""Choosing the epochs by dev: the best epoch's model is kept, and training stops once
``patience`` epochs have not beaten it, across an interruption too."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from required import require

require("datasets")  # the train extra brings transformers' trainer

from densekit.train.early_stopping import BEST_FOLDER, SCORES_FILE, KeepBestOnDev  # noqa: E402


class Model:
    """Stands in for a SentenceTransformer: its "weights" are the epoch it reached."""

    def __init__(self) -> None:
        self.epoch = 0

    def save_pretrained(self, folder: str) -> None:
        (Path(folder) / "weights.json").write_text(json.dumps(self.epoch))


def run_epochs(callback: KeepBestOnDev, model: Model, scores: list[float]) -> int:
    """Epochs until the callback stops training (or the scores run out)."""
    for score in scores:
        model.epoch += 1
        callback.score = lambda _model, value=score: value
        control = SimpleNamespace(should_training_stop=False)
        callback.on_epoch_end(None, None, control)
        if control.should_training_stop:
            break
    return model.epoch


def saved_epoch(folder: str) -> int:
    return json.loads((Path(folder) / "weights.json").read_text())


def test_the_best_epoch_is_kept_and_training_stops_after_patience(tmp_path: Path) -> None:
    model = Model()
    callback = KeepBestOnDev(model, lambda _: 0.0, tmp_path, patience=1)
    assert run_epochs(callback, model, [0.50, 0.61, 0.58, 0.70]) == 3  # 0.58 did not beat 0.61
    assert callback.scores == [0.50, 0.61, 0.58] and callback.best_epoch == 2
    assert callback.best_model(saved_epoch) == 2  # the epoch-2 weights, not the last ones
    assert json.loads((tmp_path / BEST_FOLDER / SCORES_FILE).read_text()) == callback.scores


def test_without_patience_every_epoch_runs_and_a_last_best_is_the_model(tmp_path: Path) -> None:
    model = Model()
    callback = KeepBestOnDev(model, lambda _: 0.0, tmp_path, patience=0)
    assert run_epochs(callback, model, [0.5, 0.4, 0.3, 0.6]) == 4
    assert callback.best_epoch == 4 and callback.best_model(saved_epoch) is model
    # Ties keep the earlier epoch.
    tied = KeepBestOnDev(Model(), lambda _: 0.0, tmp_path / "tied", patience=0)
    run_epochs(tied, Model(), [0.5, 0.5])
    assert tied.best_epoch == 1


def test_a_resumed_training_remembers_the_epochs_before(tmp_path: Path) -> None:
    model = Model()
    first = KeepBestOnDev(model, lambda _: 0.0, tmp_path, patience=2)
    run_epochs(first, model, [0.6, 0.5])  # interrupted after epoch 2
    resumed = KeepBestOnDev(model, lambda _: 0.0, tmp_path, patience=2)
    assert resumed.scores == [0.6, 0.5]
    assert run_epochs(resumed, model, [0.55, 0.9]) == 3  # two epochs since the best: stop
    assert resumed.best_epoch == 1 and resumed.best_model(saved_epoch) == 1
