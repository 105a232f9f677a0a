from __future__ import annotations

import statistics

import numpy as np
import pytest

from densekit.errors import InputError
from densekit.evaluate.cross_validation import (
    best_candidate,
    cross_validate,
    mean_scores,
    query_folds,
)


def test_folds_split_every_query_once_evenly_and_by_seed() -> None:
    folds = query_folds(23, 5, seed=0)
    assert sorted(q for fold in folds for q in fold) == list(range(23))
    assert sorted(len(fold) for fold in folds) == [4, 4, 5, 5, 5]
    assert query_folds(23, 5, seed=0) == folds
    assert query_folds(23, 5, seed=1) != folds
    assert folds != [list(range(start, 23, 5)) for start in range(5)]  # shuffled, not striped


@pytest.mark.parametrize(
    ("queries", "folds", "message"),
    [(10, 1, "folds must be at least 2"), (3, 4, "3 queries cannot make 4 folds")],
)
def test_folds_refuse_what_cannot_be_cross_validated(queries, folds, message) -> None:
    with pytest.raises(InputError, match=message):
        query_folds(queries, folds, seed=0)


# Three candidates, six queries, three folds of two. Each fold's choice, made on the other
# four queries, is known by hand; on all six queries the three tie.
SCORES = np.array(
    [
        [1.0, 1.0, 0.0, 0.0, 0.5, 0.5],  # good on fold 1's queries
        [0.0, 0.0, 1.0, 1.0, 0.5, 0.5],  # good on fold 2's
        [0.6, 0.6, 0.6, 0.6, 0.2, 0.4],  # steady, but weak on fold 3's
    ]
)
FOLDS = [[0, 1], [2, 3], [4, 5]]


def test_each_fold_is_chosen_on_the_others_and_scored_on_itself() -> None:
    result = cross_validate(SCORES, FOLDS)
    # Fold 1 held out: on queries 2-5 candidate 1 leads (0.75 against 0.25 and 0.45); it
    # scores 0 on queries 0-1. Fold 2 mirrors it. Fold 3: candidate 2 leads (0.6), scores 0.3.
    assert [fold.choice for fold in result.folds] == [1, 0, 2]
    assert [fold.train_score for fold in result.folds] == pytest.approx([0.75, 0.75, 0.6])
    assert [fold.held_out_score for fold in result.folds] == pytest.approx([0.0, 0.0, 0.3])
    assert [fold.queries for fold in result.folds] == [2, 2, 2]
    assert result.mean == pytest.approx(0.1)
    assert result.std == pytest.approx(statistics.stdev([0.0, 0.0, 0.3]))


def test_ties_go_to_the_first_candidate_exactly() -> None:
    assert best_candidate(SCORES, range(6)) == (0, pytest.approx(0.5))  # a three-way tie
    assert best_candidate(SCORES[::-1], range(6))[0] == 0
    # The same per-query scores in another order tie exactly, though summing them in order
    # in floating point gives two different means.
    values = [0.1, 0.2, 0.3]
    assert sum(values) != sum(values[::-1])
    shuffled = np.array([values, values[::-1]])
    first, second = mean_scores(shuffled, range(3))
    assert first == second
    assert best_candidate(shuffled, range(3))[0] == 0
    assert best_candidate(shuffled[::-1], range(3))[0] == 0


def test_a_malformed_matrix_is_refused() -> None:
    with pytest.raises(InputError, match="a matrix of candidates by queries"):
        cross_validate(np.zeros((0, 4)), [[0, 1], [2, 3]])
