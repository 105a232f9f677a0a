"""Retrieval pipelines on SciFact, LIMIT-small and Cranfield: each stage alone and composed.

    .venv/bin/python benchmarks/pipeline.py [--retrain]

The cross-encoder is fine-tuned by `densekit train-reranker` from the bundled MiniLM on SciFact's
train split only (negatives mined from the SciFact collection with BM25 and dense retrieval),
never on test queries; it is trained once and reused (`--retrain` trains again). Per pipeline:
nDCG@10 and R@100 on SciFact test (300 queries), latency per query on this CPU (each query
searched alone, one at a time, after a warm-up), and each rerank stage's passages/s, including
an LLM likelihood reranker (SmolLM2-135M, UPR scoring of the top 20); R@2 and
R@10 on LIMIT-small and nDCG@10 on Cranfield (graded 0-4) for the pipelines without the
SciFact-trained reranker and the best one with it.

Writes benchmarks/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import BUILD, build_or_open, dataset, environment, write_json

import densekit
from densekit.evaluate.beir import load_beir
from densekit.retrieve import CandidateStage, FusionStage, Pipeline, RerankStage
from densekit.train import RerankerTraining, train_reranker

RERANKER = BUILD / "scifact-reranker"
LATENCY_QUERIES = 50


def pipelines(reranker: Path | None) -> dict[str, Pipeline]:
    dense, bm25 = CandidateStage("dense", 100), CandidateStage("bm25", 100)
    splade = CandidateStage("splade", 100)
    rrf = FusionStage("rrf", k=60)
    convex = FusionStage("convex", weights=(0.4, 0.6))
    convex3 = FusionStage("convex", weights=(0.4, 0.4, 0.2))
    found = {
        "bm25": Pipeline((bm25,), name="bm25"),
        "dense": Pipeline((dense,), name="dense"),
        "splade": Pipeline((splade,), name="splade"),
        "dense+bm25 rrf": Pipeline((dense, bm25), rrf, name="dense+bm25 rrf"),
        "dense+bm25 convex": Pipeline((dense, bm25), convex, name="dense+bm25 convex"),
        "dense+bm25+splade rrf": Pipeline((dense, bm25, splade), rrf, name="3-way rrf"),
        "dense+bm25+splade convex": Pipeline((dense, bm25, splade), convex3, name="3-way convex"),
    }
    if reranker is not None:
        rerank = (RerankStage(str(reranker), top_n=100, batch=32),)
        found["bm25 + ce"] = Pipeline((bm25,), rerank=rerank, name="bm25 + ce")
        found["dense+bm25 convex + ce"] = Pipeline(
            (dense, bm25), convex, rerank, name="dense+bm25 convex + ce"
        )
    # UPR with SmolLM2-135M: log p(query | passage) over the top 20 (an LLM pass per pair).
    llm = RerankStage("smollm2", kind="llm", top_n=20, batch=8)
    found["dense+bm25 convex + llm"] = Pipeline(
        (dense, bm25), convex, (llm,), name="dense+bm25 convex + llm"
    )
    return found


def ensure_reranker(retrain: bool) -> Path:
    if retrain or not (RERANKER / "config.json").exists():
        report = train_reranker(
            dataset("scifact"),
            build_or_open("scifact").directory,
            RERANKER,
            split="train",
            settings=RerankerTraining(),
            overwrite=True,
        )
        print("trained reranker:", json.dumps(report.to_dict()), flush=True)
    return RERANKER


def latency_ms(collection: densekit.Collection, pipeline: Pipeline, queries: list[str]) -> float:
    searcher = densekit.Searcher(collection, pipeline=pipeline)
    searcher.rank(queries[:2], 10)  # warm-up: models loaded, caches filled
    started = time.perf_counter()
    for query in queries:
        searcher.rank([query], 10)
    return round(1000 * (time.perf_counter() - started) / len(queries), 1)


def evaluate_all(name: str, found: dict[str, Pipeline], metrics: list[str]) -> dict:
    collection = build_or_open(name, sparse="splade-tiny")
    data = load_beir(dataset(name), "test")
    queries = list(data.queries.values())[:LATENCY_QUERIES]
    results = {}
    for label, pipeline in found.items():
        report = densekit.evaluate(data, collection=collection, metrics=metrics, pipeline=pipeline)
        entry = {m: round(v, 4) for m, v in report.metrics.items()}
        entry["latency_ms_per_query"] = latency_ms(collection, pipeline, queries)
        entry["stages"] = report.stages
        results[label] = entry
        print(f"{name} {label}: {json.dumps(entry)}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--retrain", action="store_true", help="train the reranker again")
    args = parser.parse_args()
    reranker = ensure_reranker(args.retrain)
    training = json.loads((reranker / "densekit_training.json").read_text())
    every = pipelines(reranker)
    scifact = evaluate_all("scifact", every, ["nDCG@10", "R@100"])
    best = max(
        (label for label in every if "+ ce" in label), key=lambda label: scifact[label]["nDCG@10"]
    )
    # Rerankers are costly (and the cross-encoder SciFact-trained): elsewhere only the best
    # cross-encoder pipeline runs.
    others = {
        label: p
        for label, p in every.items()
        if ("+ ce" not in label or label == best) and "+ llm" not in label
    }
    limit = evaluate_all("limit-small", others, ["R@2", "R@10"])
    cranfield = evaluate_all("cranfield", others, ["nDCG@10"])
    write_json(
        "pipeline",
        {
            "environment": environment(),
            "reranker_training": training,
            "scifact": scifact,
            "limit_small": limit,
            "cranfield": cranfield,
            "best_reranked_pipeline": best,
        },
    )
    print("wrote benchmarks/results/pipeline.json")


if __name__ == "__main__":
    main()
