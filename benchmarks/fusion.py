"""Is the default fusion safe on every collection? Each list alone against every fusion.

    .venv/bin/python benchmarks/fusion.py [--only NAME ...]

On every judged dataset in ../shared/datasets (scifact, cranfield, limit-small,
citeseer-cites) and on the keyword and span query sets `densekit make-queries` builds from the
SciFact and Cranfield corpora (500 queries each, seed 0): nDCG@10 (and R@2 on LIMIT-small) of
dense (MiniLM), BM25, the collection default's fixed convex fusion (min-max, weights 0.4/0.6),
the same weights over z-scores, RRF (k 60) and fusion tuned
by `densekit tune` (on SciFact: chosen on the train split, measured on test; elsewhere, where
there is one judged split, its 5-fold cross-validated score on that split); the same for
three-way fusion with SPLADE-tiny. Each fusion is tested (paired t-test, randomisation test)
against the better of its lists alone on that dataset: the default is safe where it is not
significantly worse, and it must stay within 0.005 of the better list.

Writes benchmarks/results/fusion.json and fusion.png.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from _common import (
    BUILD,
    QUICK,
    RESULTS,
    build_or_open,
    dataset,
    environment,
    paired_tests,
    write_json,
)
from pipeline import pipelines

import densekit
from densekit.evaluate.beir import load_beir
from densekit.retrieve import DEFAULT_FUSION, CandidateStage, Pipeline

SAFETY_MARGIN = 0.005
# name: (dataset folder, collection of which corpus, split measured)
JUDGED = {
    "scifact": ("scifact", "scifact"),
    "cranfield": ("cranfield", "cranfield"),
    "limit-small": ("limit-small", "limit-small"),
    "citeseer-cites": ("citeseer-cites", "citeseer-cites"),
}
QUERY_SETS = {
    f"{corpus}-{task}": (corpus, task)
    for corpus in ("scifact", "cranfield")
    for task in ("keyword", "span")
}
TWO_WAY = {"dense": "dense", "bm25": "bm25", "rrf": "dense+bm25 rrf"}
THREE_WAY = {
    "splade": "splade",
    "3-way convex": "dense+bm25+splade convex",
    "3-way rrf": "dense+bm25+splade rrf",
}


def query_set(corpus: str, task: str) -> Path:
    """A `densekit make-queries` test set over ``corpus``'s documents, made once."""
    out = BUILD / "fusion-query-sets" / f"{corpus}-{task}"
    if not (out / "qrels" / "test.tsv").exists():
        from densekit.evaluate.query_sets import QuerySetSpec, make_queries

        n = 100 if QUICK else 500
        spec = QuerySetSpec(task=task, n=n, seed=0)
        make_queries(dataset(corpus) / "corpus.jsonl", out, spec, overwrite=True)
    return out


def measure(label: str, folder: Path, corpus: str, metrics: list[str]) -> dict:
    collection = build_or_open(corpus, sparse="splade-tiny")
    data = load_beir(folder, "test")
    every = pipelines(reranker=densekit.__file__)  # no rerank stage runs here
    stages = (CandidateStage("dense", None), CandidateStage("bm25", None))
    z_score = replace(DEFAULT_FUSION, normalization="z-score")
    rows = {
        "default": Pipeline(stages, DEFAULT_FUSION, name="default"),
        "z-score": Pipeline(stages, z_score, name="z-score"),
    }
    rows |= {name: every[key] for name, key in {**TWO_WAY, **THREE_WAY}.items()}
    scores, per_query = {}, {}
    for name, pipeline in rows.items():
        report = densekit.evaluate(data, collection=collection, pipeline=pipeline, metrics=metrics)
        scores[name] = {m: round(v, 4) for m, v in report.metrics.items()}
        per_query[name] = report.per_query
    main = metrics[0]
    result: dict = {"queries": len(per_query["dense"]), "measure": main, "scores": scores}
    result["tuned"] = tuned(folder, corpus, collection, main)
    tests = {}
    for fused, parts in (
        ("default", ("dense", "bm25")),
        ("z-score", ("dense", "bm25")),
        ("rrf", ("dense", "bm25")),
        ("3-way convex", ("dense", "bm25", "splade")),
        ("3-way rrf", ("dense", "bm25", "splade")),
    ):
        best = max(parts, key=lambda part: scores[part][main])
        test = paired_tests(per_query[best], per_query[fused], main)
        test["against"] = best
        test["within_margin"] = scores[fused][main] >= scores[best][main] - SAFETY_MARGIN
        tests[fused] = test
    result["tests"] = tests
    print(label, json.dumps({"scores": scores, "tuned": result["tuned"]}), flush=True)
    return result


def tuned(folder: Path, corpus: str, collection: densekit.Collection, metric: str) -> dict:
    """SciFact: chosen on train, measured on test; elsewhere: cross-validated on test."""
    if (folder / "qrels" / "train.tsv").exists():
        choice = densekit.tune_fusion(folder, collection, split="train", metric=metric, store=False)
        fusion = choice.fusion
        test = densekit.evaluate(
            load_beir(folder, "test"),
            collection=collection,
            fusion=fusion,
            retriever="hybrid",
            metrics=[metric],
        )
        return {
            "fusion": fusion.to_dict(),
            "train_cv_mean": round(choice.cv_mean, 4),
            "train_cv_std": round(choice.cv_std, 4),
            "test": round(test.metrics[metric], 4),
        }
    choice = densekit.tune_fusion(folder, collection, split="test", metric=metric, store=False)
    return {
        "fusion": choice.fusion.to_dict(),
        "cv_mean": round(choice.cv_mean, 4),
        "cv_std": round(choice.cv_std, 4),
        "folds": len(choice.folds),
    }


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    series = ["dense", "bm25", "default", "z-score", "rrf", "splade", "3-way convex"]
    figure, axes = plt.subplots(figsize=(max(8, 1.6 * len(names)), 4.5))
    width = 0.8 / len(series)
    for i, row in enumerate(series):
        values = [results[name]["scores"][row][results[name]["measure"]] for name in names]
        axes.bar([x + i * width for x in range(len(names))], values, width, label=row)
    axes.set_xticks([x + 0.4 - width / 2 for x in range(len(names))], names, rotation=20)
    axes.set_ylabel("nDCG@10 (LIMIT-small: R@2)")
    axes.legend(ncol=3, fontsize=8)
    figure.tight_layout()
    figure.savefig(RESULTS / "fusion.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=[], help="datasets or query sets to measure")
    args = parser.parse_args()
    previous = RESULTS / "fusion.json"
    data = json.loads(previous.read_text()) if previous.exists() else {}
    results = data.get("datasets", {})
    wanted = set(args.only)
    for name, (folder, corpus) in JUDGED.items():
        if wanted and name not in wanted:
            continue
        metrics = ["R@2", "nDCG@10"] if name == "limit-small" else ["nDCG@10"]
        started = time.perf_counter()
        results[name] = measure(name, dataset(folder), corpus, metrics)
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
        write_json("fusion", {"environment": environment(), "datasets": results})
    for name, (corpus, task) in QUERY_SETS.items():
        if wanted and name not in wanted:
            continue
        started = time.perf_counter()
        results[name] = measure(name, query_set(corpus, task), corpus, ["nDCG@10"])
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
        write_json("fusion", {"environment": environment(), "datasets": results})
    plot(results)
    print("wrote benchmarks/results/fusion.json and fusion.png")


if __name__ == "__main__":
    main()
