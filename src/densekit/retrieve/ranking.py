"""A ranked list of collection rows with scores, best first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ranking:
    rows: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_mapping(cls, scores: Mapping[int, float]) -> Ranking:
        # Ties break on row for a deterministic order.
        ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        rows = np.fromiter((row for row, _ in ordered), dtype=np.int64, count=len(ordered))
        values = np.fromiter((s for _, s in ordered), dtype=np.float32, count=len(ordered))
        return cls(rows, values)

    def top(self, k: int) -> Ranking:
        return Ranking(self.rows[:k], self.scores[:k])


@dataclass(frozen=True)
class Hit:
    """One search result, for people and for run files."""

    id: str
    score: float
    rank: int
    title: str = ""
    text: str = ""
