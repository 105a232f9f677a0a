"""The free-embedding experiment: free vectors reproduce every top-k set where the dimension
allows, fail where it cannot, and the critical-n search finds the boundary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from densekit.errors import InputError
from densekit.evaluate.limits import FitResult, FitSettings, find_critical_n, fit
from densekit.evaluate.limits.critical_n import cubic_fit, paper_critical_n
from densekit.evaluate.limits.free_embedding import check_run, memory_needed, subsets


def test_every_k_subset_is_a_query() -> None:
    pairs = subsets(6, 2)
    assert pairs.shape == (math.comb(6, 2), 2)
    assert len({tuple(row) for row in pairs}) == 15 and (pairs[:, 0] < pairs[:, 1]).all()


def test_enough_dimensions_reproduce_every_top_2_set() -> None:
    result = fit(6, 8, 2, FitSettings(max_steps=3000))
    assert result.solved and result.accuracy == 1.0 and result.steps < 3000


def test_one_dimension_cannot_order_every_pair_of_five_documents() -> None:
    # On a line every query ranks documents by one coordinate (or its reverse): only the two
    # ends can ever be a top pair together with the other end's neighbours, never all 10.
    result = fit(5, 1, 2, FitSettings(max_steps=600, patience=200))
    assert not result.solved and result.accuracy < 1.0


class Threshold:
    """A run that succeeds up to ``critical`` documents, counting the runs asked of it."""

    def __init__(self, critical: int) -> None:
        self.critical = critical
        self.asked: list[int] = []

    def __call__(self, n: int) -> FitResult:
        self.asked.append(n)
        return FitResult(n, n <= self.critical, 1.0 if n <= self.critical else 0.9, 1, 0.0, 0.0)


@pytest.mark.parametrize("start", [3, 17, 40, 41, 300])
def test_the_search_finds_the_critical_n_from_any_first_guess(start: int) -> None:
    run = Threshold(40)
    assert find_critical_n(run, start) == 40
    assert len(run.asked) == len(set(run.asked)), "no n is run twice"


def test_a_resumed_search_runs_nothing_it_has_measured() -> None:
    known: dict[int, FitResult] = {}
    first = Threshold(25)
    assert find_critical_n(first, 20, known) == 25
    again = Threshold(25)
    assert find_critical_n(again, 20, known) == 25 and again.asked == []


def test_no_critical_n_when_even_the_smallest_fails() -> None:
    assert find_critical_n(Threshold(1), 10) is None


def test_the_cubic_fit_recovers_a_cubic_and_the_paper_fit_is_the_papers() -> None:
    dims = [4, 8, 12, 16, 20]
    points = {d: round(paper_critical_n(d)) for d in dims}
    fitted = cubic_fit(points)
    assert fitted is not None
    assert np.polynomial.polynomial.polyval(32, fitted) == pytest.approx(
        paper_critical_n(32), rel=0.05
    )
    assert cubic_fit({4: 7, 8: 27}) is None
    # The paper: about 4 million documents at d = 1024.
    assert paper_critical_n(1024) == pytest.approx(4.0e6, rel=0.05)


def test_ill_posed_or_oversized_runs_are_refused_with_the_estimate() -> None:
    with pytest.raises(InputError, match="more documents than k"):
        check_run(2, 4, 2)
    with pytest.raises(InputError, match="--k 0"):
        check_run(10, 4, 0)
    with pytest.raises(InputError, match="dimension 0"):
        check_run(10, 0, 2)
    needed = memory_needed(2000, 64, 2)
    assert needed > 2**34  # 2 million queries × 2,000 documents
    with pytest.raises(InputError, match=r"GiB per step, more than the 1\.0 GiB available"):
        check_run(2000, 64, 2, memory_bytes=2**30)


def test_a_tie_at_the_top_k_boundary_is_not_a_success() -> None:
    import torch

    from densekit.evaluate.limits.free_embedding import top_k_accuracy

    indices = torch.tensor([[0, 1]])
    valid, counts = torch.ones(1, 2, dtype=torch.bool), torch.tensor([2])
    tied = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # document 2 ties with the relevant pair
    assert top_k_accuracy(tied, indices, valid, counts) == 0.0
    assert top_k_accuracy(torch.tensor([[1.0, 1.0, 0.5, 0.0]]), indices, valid, counts) == 1.0


def test_the_search_floor_is_one_more_document_than_k(tmp_path) -> None:
    from densekit.evaluate.limits import run_experiment

    record = run_experiment([1], 1, tmp_path, FitSettings(max_steps=300), "cpu", progress=False)
    runs = {int(n) for n in record["dims"]["1"]["runs"]}
    assert min(runs) >= 2  # never n <= k
