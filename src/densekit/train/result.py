"""What every training function returns: the output path and the run's report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

CARD_FILE = "densekit_training.json"  # a trained model folder's card: its data and report


@dataclass(frozen=True)
class TrainResult:
    """A finished training: ``out`` holds the model; subclasses add what was trained, the data
    sizes, the mined negatives, the losses or dev scores as measured, and the time taken."""

    out: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def warnings(self) -> list[str]:
        """What the user should know about the data or the outcome."""
        return []

    def summary(self) -> list[str]:
        """The report in a few lines of text."""
        return [f"trained {self.out}"]
