"""Bounds on the dimension a relevance matrix needs: Forster's lower bound, and the smallest d
free vectors fit exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import hadamard

from densekit.errors import InputError
from densekit.evaluate.limits import FitSettings
from densekit.evaluate.limits.sign_rank import (
    Relevance,
    dimension_bounds,
    forster_lower_bound,
    read_relevance,
)


def write_qrels(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    body = "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows)
    path.write_text("query-id\tcorpus-id\tscore\n" + body, encoding="utf-8")
    return path


def test_relevant_pairs_are_read_by_score(tmp_path: Path) -> None:
    qrels = write_qrels(tmp_path / "q.tsv", [("q1", "a", 1), ("q1", "b", 2), ("q2", "c", 0)])
    relevance = read_relevance(qrels)
    assert relevance.queries == ["q1"] and relevance.documents == ["a", "b"]
    assert relevance.rows == [[0, 1]] and relevance.k_counts == {2: 1}


def test_bad_qrels_are_named_by_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("query-id\tcorpus-id\tscore\nq1\ta\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.tsv:2: expected"):
        read_relevance(bad)
    with pytest.raises(InputError, match="no relevant pairs"):
        read_relevance(write_qrels(tmp_path / "zero.tsv", [("q1", "a", 0)]))


def test_forsters_bound_on_a_hadamard_pattern_is_its_square_root_minus_one() -> None:
    # A Hadamard sign matrix of order 16 has norm 4: sign-rank >= 16 / 4 = 4.
    signs = hadamard(16)
    rows = [list(np.flatnonzero(row > 0)) for row in signs]
    relevance = Relevance(rows, [f"q{i}" for i in range(16)], [f"d{j}" for j in range(16)])
    assert forster_lower_bound(relevance) == 3


def test_every_pair_of_six_documents_needs_more_than_one_dimension() -> None:
    pairs = [[a, b] for a in range(6) for b in range(a + 1, 6)]
    relevance = Relevance(pairs, [f"q{i}" for i in range(15)], [f"d{j}" for j in range(6)])
    bounds = dimension_bounds(relevance, FitSettings(max_steps=3000))
    assert bounds.fitted and 1 < bounds.upper <= 6
    assert bounds.tried[bounds.upper].solved
    assert bounds.failed is not None and not bounds.tried[bounds.failed].solved
    assert bounds.failed == bounds.upper - 1  # bisected to the boundary


def test_without_a_fit_the_one_hot_construction_is_the_upper_bound() -> None:
    pairs = [[a, b] for a in range(5) for b in range(a + 1, 5)]
    relevance = Relevance(pairs, [f"q{i}" for i in range(10)], [f"d{j}" for j in range(5)])
    bounds = dimension_bounds(relevance, FitSettings(max_steps=1))
    assert not bounds.fitted and bounds.upper == 5 and bounds.failed == 5
