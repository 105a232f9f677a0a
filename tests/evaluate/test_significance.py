from __future__ import annotations

import pytest

from densekit.errors import InputError
from densekit.evaluate.significance import corrected, paired_tests


def scores(values: list[float]) -> dict[str, dict[str, float]]:
    return {f"q{i}": {"nDCG@10": value} for i, value in enumerate(values)}


def test_a_clear_gain_is_significant_and_counted() -> None:
    a = scores([0.1 * (i % 5) for i in range(40)])
    b = scores([0.1 * (i % 5) + 0.2 + 0.01 * (i % 3) for i in range(40)])
    test = paired_tests(a, b, "nDCG@10")
    assert test["mean_difference"] == pytest.approx(0.21, abs=1e-3)
    assert (test["better"], test["worse"], test["queries"]) == (40, 0, 40)
    assert test["t_test_p"] < 1e-6 and test["randomisation_p"] < 1e-3


def test_no_difference_is_no_evidence() -> None:
    same = scores([0.3, 0.5, 0.9])
    test = paired_tests(same, same, "nDCG@10")
    assert test["t_test_p"] == 1.0 and test["randomisation_p"] == 1.0


def test_the_randomisation_test_is_seeded() -> None:
    a, b = scores([0.2, 0.4, 0.1, 0.7, 0.5]), scores([0.3, 0.3, 0.4, 0.8, 0.5])
    assert paired_tests(a, b, "nDCG@10") == paired_tests(a, b, "nDCG@10")


def test_holm_steps_down_and_never_rejects_less_than_bonferroni() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, kept monotone: 0.02, 0.03, 0.06, 0.06.
    assert corrected(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert corrected(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    pairs = zip(corrected(p, "holm"), corrected(p, "bonferroni"), strict=True)
    assert all(holm <= bonferroni for holm, bonferroni in pairs)
    assert corrected(p, "none") == p


def test_bad_input_is_named() -> None:
    with pytest.raises(InputError, match="unknown correction 'sidak'"):
        corrected([0.1], "sidak")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no query is scored by both"):
        paired_tests(scores([0.1]), {"other": {"nDCG@10": 0.2}}, "nDCG@10")


def test_a_nan_p_value_counts_as_no_evidence_wherever_it_stands() -> None:
    nan = float("nan")
    assert corrected([nan, 0.01, 0.04], "holm") == pytest.approx([1.0, 0.03, 0.08])
    assert corrected([0.01, nan, 0.04], "holm") == pytest.approx([0.03, 1.0, 0.08])
    one = paired_tests(scores([0.2]), scores([0.5]), "nDCG@10")
    assert one["t_test_p"] == 1.0  # one query: no test
