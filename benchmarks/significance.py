"""Paired significance of the first-stage comparisons in docs/results.md.

For each dataset the first-stage pipelines of benchmarks/pipeline.py (one retriever, and
dense + bm25 (+ SPLADE-tiny) fused by rrf or convex weights) are evaluated with per-query
scores, and each comparison the docs make ("B beats A") gets a paired t-test and a two-sided
randomisation test (10,000 sign flips) on the per-query differences.

    .venv/bin/python benchmarks/significance.py   → results/significance.json
"""

from __future__ import annotations

import time

from _common import build_or_open, dataset, environment, paired_tests, write_json
from pipeline import pipelines

import densekit

# Each dataset with the measure its table leads with.
DATASETS = {"scifact": "nDCG@10", "cranfield": "nDCG@10", "limit-small": "R@2"}
FIRST_STAGES = [
    "bm25",
    "dense",
    "splade",
    "dense+bm25 rrf",
    "dense+bm25 convex",
    "dense+bm25+splade rrf",
    "dense+bm25+splade convex",
]
# (A, B): is B better than A?
COMPARISONS = [
    ("dense", "bm25"),
    ("dense", "dense+bm25 convex"),
    ("bm25", "dense+bm25 convex"),
    ("dense+bm25 rrf", "dense+bm25 convex"),
    ("dense+bm25 convex", "dense+bm25+splade convex"),
    ("dense+bm25+splade rrf", "dense+bm25+splade convex"),
]


def main() -> None:
    every = pipelines(reranker=densekit.__file__)  # rerank stages are not run here
    results: dict[str, dict] = {}
    for name, measure in DATASETS.items():
        started = time.perf_counter()
        collection = build_or_open(name, sparse="splade-tiny")
        data = densekit.load_beir(dataset(name), "test")
        per_query, aggregate = {}, {}
        for stage in FIRST_STAGES:
            report = densekit.evaluate(
                data, collection=collection, pipeline=every[stage], metrics=[measure]
            )
            per_query[stage] = report.per_query
            aggregate[stage] = round(report.metrics[measure], 4)
        tests = {
            f"{b} vs {a}": {
                f"{measure} {a}": aggregate[a],
                f"{measure} {b}": aggregate[b],
                **paired_tests(per_query[a], per_query[b], measure),
            }
            for a, b in COMPARISONS
        }
        results[name] = {"measure": measure, "aggregate": aggregate, "tests": tests}
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
        for label, test in tests.items():
            print(name, label, test, flush=True)
    write_json("significance", {"environment": environment(), "datasets": results})


if __name__ == "__main__":
    main()
