"""Several systems on one dataset, as a researcher compares them: each one's metrics, and each
against a baseline by paired tests on per-query scores, corrected for the number of tests.

A system is an :class:`~densekit.evaluate.evaluation.EvalReport`: a collection searched
(:func:`~densekit.evaluate.evaluate`) or a run file scored (:func:`~densekit.evaluate.evaluate_run`)
on the same split, so every per-query value is trec_eval's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from densekit.errors import InputError
from densekit.evaluate.evaluation import EvalReport
from densekit.evaluate.metrics import compute_metrics
from densekit.evaluate.significance import Correction, corrected, paired_tests

CUTOFFS = (1, 3, 5, 10, 20, 50, 100)  # of the metric-by-cutoff curves


@dataclass(frozen=True)
class PairedResult:
    """One system against the baseline on one measure."""

    system: str
    measure: str
    difference: float  # system − baseline, mean over the queries
    wins: int
    ties: int
    losses: int
    t_test_p: float
    randomisation_p: float
    t_test_p_corrected: float
    randomisation_p_corrected: float

    def significant(self, alpha: float = 0.05) -> bool:
        """Both corrected tests below ``alpha``: what the tables mark."""
        return max(self.t_test_p_corrected, self.randomisation_p_corrected) < alpha


@dataclass
class Comparison:
    dataset: str
    split: str
    baseline: str
    measures: list[str]
    correction: Correction
    scores: dict[str, dict[str, float]]  # system -> measure -> mean
    tests: list[PairedResult]
    per_query: dict[str, dict[str, dict[str, float]]] = field(repr=False)
    # system -> measure family (nDCG, R, ...) -> cutoff -> mean: the curves of the report.
    by_cutoff: dict[str, dict[str, dict[int, float]]] = field(repr=False, default_factory=dict)

    @property
    def systems(self) -> list[str]:
        return list(self.scores)

    def to_dict(self, *, per_query: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "dataset": self.dataset,
            "split": self.split,
            "baseline": self.baseline,
            "measures": self.measures,
            "correction": self.correction,
            "scores": self.scores,
            "tests": [vars(test) for test in self.tests],
            "by_cutoff": self.by_cutoff,
        }
        if per_query:
            data["per_query"] = self.per_query
        return data


def compare_reports(
    reports: Mapping[str, EvalReport],
    *,
    baseline: str | None = None,
    correction: Correction = "holm",
) -> Comparison:
    """Each report's metrics, and every other one against ``baseline`` (default: the first)
    by a paired t-test and a randomisation test per measure; the p-values of each test are
    corrected together over all (system, measure) pairs."""
    if len(reports) < 2:
        raise InputError("compare needs two systems or more (runs or collections)")
    names = list(reports)
    baseline = names[0] if baseline is None else baseline
    if baseline not in reports:
        raise InputError(f"baseline {baseline!r} is none of the systems: {', '.join(names)}")
    first = reports[names[0]]
    for name, report in reports.items():
        if (report.dataset, report.split) != (first.dataset, first.split):
            raise InputError(
                f"{name} was scored on {report.dataset}/{report.split}, {names[0]} on "
                f"{first.dataset}/{first.split}; compare systems on one split"
            )
    measures = list(first.metrics)
    raw = [
        (name, measure, paired_tests(reports[baseline].per_query, report.per_query, measure))
        for name, report in reports.items()
        if name != baseline
        for measure in measures
    ]
    t_corrected = corrected([test["t_test_p"] for _, _, test in raw], correction)
    r_corrected = corrected([test["randomisation_p"] for _, _, test in raw], correction)
    tests = [
        PairedResult(
            system=name,
            measure=measure,
            difference=test["mean_difference"],
            wins=test["better"],
            ties=test["queries"] - test["better"] - test["worse"],
            losses=test["worse"],
            t_test_p=test["t_test_p"],
            randomisation_p=test["randomisation_p"],
            t_test_p_corrected=float(f"{t:.3g}"),
            randomisation_p_corrected=float(f"{r:.3g}"),
        )
        for (name, measure, test), t, r in zip(raw, t_corrected, r_corrected, strict=True)
    ]
    return Comparison(
        dataset=first.dataset,
        split=first.split,
        baseline=baseline,
        measures=measures,
        correction=correction,
        scores={name: dict(report.metrics) for name, report in reports.items()},
        tests=tests,
        per_query={name: report.per_query for name, report in reports.items()},
    )


def cutoff_curves(
    comparison: Comparison, reports: Mapping[str, EvalReport], qrels: Mapping[str, Any]
) -> None:
    """Fill ``comparison.by_cutoff``: each measure family with a cutoff (nDCG@10 → nDCG) at
    every cutoff of ``CUTOFFS``, from each report's run."""
    families = list(dict.fromkeys(m.split("@")[0] for m in comparison.measures if "@" in m))
    if not families:
        return
    names = [f"{family}@{k}" for family in families for k in CUTOFFS]
    for system, report in reports.items():
        run = {query: dict(hits) for query, hits in report.run.items()}
        means = compute_metrics(qrels, run, names).aggregate  # type: ignore[arg-type]
        comparison.by_cutoff[system] = {
            family: {k: round(means[f"{family}@{k}"], 4) for k in CUTOFFS} for family in families
        }
