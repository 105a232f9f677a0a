"""Metric parity with trec_eval on a small run checked by hand."""

from __future__ import annotations

import math

import pytest

from densekit.errors import InputError
from densekit.evaluate import compute_metrics, parse_metrics
from densekit.evaluate.metrics import run_depth

QRELS = {
    "q1": {"d1": 2, "d2": 0, "d3": 1},  # graded: d1 is "highly relevant"
    "q2": {"d9": 1},
    "q3": {"d1": 1},
    "q4": {"d5": 1},  # judged, never retrieved
}
RUN = {
    "q1": {"d2": 0.9, "d1": 0.5, "d4": 0.1},
    "q2": {"d7": 0.3, "d9": 0.2},
    "q3": {"d1": 0.5, "d2": 0.5},  # a tie: trec_eval orders it by docno descending, d2 first
    "unjudged": {"d1": 1.0},
}
LOG2_3 = math.log2(3)
# Per query, computed by hand with trec_eval's definitions (linear gains for nDCG).
HAND = {
    "q1": {"nDCG@10": (2 / LOG2_3) / (2 + 1 / LOG2_3), "RR@10": 0.5, "R@100": 0.5, "AP@100": 0.25},
    "q2": {"nDCG@10": 1 / LOG2_3, "RR@10": 0.5, "R@100": 1.0, "AP@100": 0.5},
    "q3": {"nDCG@10": 1 / LOG2_3, "RR@10": 0.5, "R@100": 1.0, "AP@100": 0.5},
    "q4": {"nDCG@10": 0.0, "RR@10": 0.0, "R@100": 0.0, "AP@100": 0.0},
}


def test_per_query_values_match_hand_computation() -> None:
    result = compute_metrics(QRELS, RUN, ["nDCG@10", "RR@10", "R@100", "AP@100"])
    assert set(result.per_query) == set(HAND)
    for query_id, values in HAND.items():
        assert result.per_query[query_id] == pytest.approx(values), query_id


def test_means_cover_every_judged_query() -> None:
    result = compute_metrics(QRELS, RUN, ["nDCG@10", "RR@10", "R@100", "AP@100"])
    for name in ("nDCG@10", "RR@10", "R@100", "AP@100"):
        assert result.aggregate[name] == pytest.approx(sum(v[name] for v in HAND.values()) / 4)


def test_agrees_with_pytrec_eval_directly() -> None:
    import pytrec_eval

    evaluator = pytrec_eval.RelevanceEvaluator(QRELS, {"ndcg_cut.10", "recall.100", "map_cut.100"})
    direct = evaluator.evaluate({q: d for q, d in RUN.items() if q in QRELS})
    result = compute_metrics(QRELS, RUN, ["nDCG@10", "R@100", "AP@100"])
    for query_id, values in direct.items():
        assert result.per_query[query_id]["nDCG@10"] == pytest.approx(values["ndcg_cut_10"])
        assert result.per_query[query_id]["R@100"] == pytest.approx(values["recall_100"])
        assert result.per_query[query_id]["AP@100"] == pytest.approx(values["map_cut_100"])


def test_metric_names_are_validated() -> None:
    assert [str(m) for m in parse_metrics("nDCG@10, R@100")] == ["nDCG@10", "R@100"]
    with pytest.raises(InputError, match="unknown metric 'NDGC@10'"):
        parse_metrics("NDGC@10")
    with pytest.raises(InputError, match="no metrics"):
        parse_metrics(" , ")


def test_trec_eval_names_are_taken_alongside_ir_measures_names() -> None:
    asked = "ndcg_cut_10,ndcg_cut.10,map,P_5,recall_100,recip_rank,nDCG@10"
    assert [str(m) for m in parse_metrics(asked)] == ["nDCG@10", "AP", "P@5", "R@100", "RR"]
    import pytrec_eval

    names = {"ndcg_cut.10", "map", "P.5", "recall.100", "recip_rank"}
    direct = pytrec_eval.RelevanceEvaluator(QRELS, names).evaluate(
        {q: d for q, d in RUN.items() if q in QRELS}
    )
    result = compute_metrics(QRELS, RUN, "ndcg_cut.10,map,P_5,recall_100,recip_rank")
    for query_id, values in direct.items():
        ours = result.per_query[query_id]
        assert ours["nDCG@10"] == pytest.approx(values["ndcg_cut_10"])
        assert ours["AP"] == pytest.approx(values["map"])
        assert ours["P@5"] == pytest.approx(values["P_5"])
        assert ours["R@100"] == pytest.approx(values["recall_100"])
        assert ours["RR"] == pytest.approx(values["recip_rank"])


def test_a_measure_no_provider_computes_here_is_refused_by_name() -> None:
    # ERR parses, but its provider (gdeval, a perl script) cannot score here.
    with pytest.raises(InputError, match=r"metric 'ERR@10' \(ERR@10\) cannot be computed here"):
        parse_metrics("nDCG@10,ERR@10")


def test_run_depth_covers_the_deepest_cutoff() -> None:
    assert run_depth(parse_metrics("nDCG@10")) == 100
    assert run_depth(parse_metrics("R@1000")) == 1000
    assert run_depth(parse_metrics("AP")) == 1000
