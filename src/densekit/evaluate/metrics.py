"""Metrics with trec_eval semantics, computed by ir_measures (pytrec_eval underneath).

Graded relevance is honoured as trec_eval does: nDCG gains are the relevance labels, and the
binary measures count a label >= 1 as relevant. Score ties are ordered as trec_eval orders them
(document id descending) for every measure, including those ir_measures computes with another
backend. Means run over every judged query; a query with no retrieved documents scores 0
(as ``trec_eval -c``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from densekit.errors import InputError
from densekit.evaluate.beir import Qrels
from densekit.evaluate.runfile import Run

DEFAULT_METRICS = ("nDCG@10", "R@100", "RR@10", "AP@100")


def parse_metrics(names: str | Sequence[str]) -> list:
    """Parse metric names, as ir_measures writes them (``nDCG@10,R@100``) or as trec_eval does
    (``ndcg_cut.10``, ``ndcg_cut_10``, ``map``, ``P_5``, ``recall_100``, ``recip_rank``), and
    say which one is wrong, or cannot be computed here, if any."""
    import ir_measures

    if isinstance(names, str):
        names = [name.strip() for name in names.split(",") if name.strip()]
    if not names:
        raise InputError("no metrics given; e.g. --metrics nDCG@10,R@100")
    measures = []
    for name in names:
        try:
            parsed = [ir_measures.parse_measure(name)]
        except (ValueError, NameError, SyntaxError, KeyError):
            try:
                parsed = ir_measures.parse_trec_measure(name)
            except (ValueError, NameError, SyntaxError, KeyError, IndexError):
                raise InputError(
                    f"unknown metric {name!r}; use ir_measures names such as nDCG@10, R@100, "
                    "RR@10, AP@100, P@5, Judged@10, or trec_eval's (ndcg_cut.10, map, P_5, "
                    "recall_100, recip_rank)"
                ) from None
        for measure in parsed:
            _check_computable(str(measure), name)
        measures += parsed
    # The same measure asked twice (nDCG@10 and ndcg_cut.10) is computed and reported once.
    return list({str(measure): measure for measure in measures}.values())


@functools.cache
def _check_computable(measure: str, asked: str) -> None:
    """Refuse, naming it, a measure ir_measures parses but cannot compute here (its provider
    is missing or fails), before any retrieval is done for it."""
    import ir_measures

    try:
        list(ir_measures.iter_calc([ir_measures.parse_measure(measure)], _PROBE_QRELS, _PROBE_RUN))
    except Exception as error:
        detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise InputError(
            f"metric {asked!r} ({measure}) cannot be computed here: ir_measures has no working "
            f"provider for it ({type(error).__name__}{': ' + detail if detail else ''}); "
            "choose another metric"
        ) from None


# A judged query with one relevant and one retrieved document: enough to run any provider.
_PROBE_QRELS = {"q1": {"d1": 1, "d2": 0}}
_PROBE_RUN = {"q1": {"d1": 2.0, "d2": 1.0}}


def run_depth(measures: Sequence) -> int:
    """How many documents per query a run needs for these metrics to be exact."""
    cutoffs = [m["cutoff"] if "cutoff" in m.params else None for m in measures]
    if any(cutoff is None for cutoff in cutoffs):
        return 1000
    return max(100, *cutoffs)


@dataclass(frozen=True)
class MetricResult:
    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]]


def compute_metrics(
    qrels: Qrels, run: Run, metrics: str | Sequence[str] = DEFAULT_METRICS
) -> MetricResult:
    import ir_measures

    measures = parse_metrics(metrics)
    judged = {q: docs for q, docs in qrels.items() if docs}
    per_query: dict[str, dict[str, float]] = {q: {str(m): 0.0 for m in measures} for q in judged}
    for metric in ir_measures.iter_calc(measures, judged, trec_eval_order(run, judged)):
        per_query[metric.query_id][str(metric.measure)] = float(metric.value)
    count = max(1, len(per_query))
    aggregate = {
        str(m): sum(values[str(m)] for values in per_query.values()) / count for m in measures
    }
    return MetricResult(aggregate, per_query)


def trec_eval_order(run: Run, qrels: Mapping[str, object]) -> Run:
    """The judged queries' rankings, rescored by rank in trec_eval's order, so no backend can
    break a score tie differently (trec_eval: score descending, then document id descending)."""
    ordered: Run = {}
    for query_id, docs in run.items():
        if query_id not in qrels:
            continue
        ranked = sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)
        ordered[query_id] = {doc: float(len(ranked) - i) for i, (doc, _) in enumerate(ranked)}
    return ordered
