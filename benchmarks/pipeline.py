"""Retrieval pipelines on SciFact, LIMIT-small and Cranfield: each stage alone and composed.

    .venv/bin/python benchmarks/pipeline.py [--retrain]

The cross-encoder is fine-tuned by `densekit train-reranker` (default recipe) from the bundled
MiniLM on SciFact's train split only (negatives mined from the SciFact collection with BM25 and
dense retrieval), never on test queries; it is trained once and reused (`--retrain` trains
again; the pipelines that use it are measured again whenever its training card changes). It
reranks the top 50 alone, and blended half-and-half with the first-stage score. Per pipeline:
nDCG@10 and R@100 on SciFact test (300 queries), latency per query on this CPU (each query
searched alone, one at a time, over 20 queries after a warm-up), and each rerank stage's
passages/s, including an LLM likelihood reranker (SmolLM2-135M, UPR scoring of the top 10), and
on SciFact the scores apart on the test queries whose relevant documents train judged too
(seen) or not (unseen), where a reranker trained on train cannot have learned the answers, with
per-query scores and paired tests (t-test, randomisation) of each reranker against the first
stage it reranks, on all test queries and on the unseen ones alone; R@2 and R@10 on LIMIT-small
and nDCG@10 on Cranfield (graded 0-4) for the pipelines without rerankers. Then the same on
SciFact with the bi-encoder `densekit train` makes with its default recipe on SciFact train
(benchmarks/train.py's "default recipe" model; trained here if missing) in place of MiniLM,
first stages fused by calibrated fusion (`scifact_trained`). Results are saved after each
pipeline; a rerun measures only what is missing (`--fresh` measures everything again).

Writes benchmarks/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import (
    BUILD,
    QUICK,
    RESULTS,
    build_once,
    build_or_open,
    dataset,
    environment,
    paired_tests_with_unseen,
    seen_unseen,
    write_json,
)

import densekit
from densekit.evaluate.beir import load_beir
from densekit.retrieve import CandidateStage, FusionConfig, Pipeline, RerankStage
from densekit.train import RerankerTraining, train_reranker

RERANKER = BUILD / "scifact-reranker"
# QUICK: shallower reranking, one training epoch and fewer timed queries: the same code paths.
LATENCY_QUERIES = 5 if QUICK else 20
CE_DEPTH, LLM_DEPTH = (10, 3) if QUICK else (50, 10)
FIRST_STAGE = "dense+bm25+splade convex"
# (A, B): does B, which reranks A's candidates, beat A? Tested on SciFact's per-query nDCG@10.
RERANK_COMPARISONS = [
    (FIRST_STAGE, "3-way convex + ce"),
    (FIRST_STAGE, "3-way convex + ce blend 0.5"),
    ("3-way convex + ce", "3-way convex + ce blend 0.5"),
    (FIRST_STAGE, "3-way convex + llm"),
]


def pipelines(reranker: Path) -> dict[str, Pipeline]:
    dense, bm25 = CandidateStage("dense", 100), CandidateStage("bm25", 100)
    splade = CandidateStage("splade", 100)
    rrf = FusionConfig("rrf", k=60)
    convex = FusionConfig("convex", weights=(0.4, 0.6))
    convex3 = FusionConfig("convex", weights=(0.4, 0.4, 0.2))
    calibrated = FusionConfig("calibrated")
    three = (dense, bm25, splade)
    return {
        "bm25": Pipeline((bm25,), name="bm25"),
        "dense": Pipeline((dense,), name="dense"),
        "splade": Pipeline((splade,), name="splade"),
        "dense+bm25 rrf": Pipeline((dense, bm25), rrf, name="dense+bm25 rrf"),
        "dense+bm25 convex": Pipeline((dense, bm25), convex, name="dense+bm25 convex"),
        "dense+bm25+splade rrf": Pipeline(three, rrf, name="3-way rrf"),
        "dense+bm25+splade convex": Pipeline(three, convex3, name="3-way convex"),
        "dense+bm25+splade calibrated": Pipeline(three, calibrated, name="3-way calibrated"),
        # Rerankers over the best first stage. The cross-encoder reranks the top 50; UPR with
        # SmolLM2-135M (an LLM pass per pair) the top 10.
        "3-way convex + ce": Pipeline(
            three, convex3, (RerankStage(str(reranker), top_n=CE_DEPTH, batch=32),), name="+ ce"
        ),
        # Half reranker, half first-stage score.
        "3-way convex + ce blend 0.5": Pipeline(
            three,
            convex3,
            (RerankStage(str(reranker), top_n=CE_DEPTH, batch=32, weight=0.5),),
            name="+ ce blend",
        ),
        "3-way calibrated + ce blend 0.5": Pipeline(
            three,
            calibrated,
            (RerankStage(str(reranker), top_n=CE_DEPTH, batch=32, weight=0.5),),
            name="calibrated + ce blend",
        ),
        "3-way convex + llm": Pipeline(
            three,
            convex3,
            (RerankStage("smollm2", kind="llm", top_n=LLM_DEPTH, batch=8),),
            name="+ llm",
        ),
    }


def ensure_reranker(retrain: bool) -> Path:
    if retrain or not (RERANKER / "config.json").exists():
        report = train_reranker(
            dataset("scifact"),
            # Negatives mined as for the published reranker: BM25 with classic terms.
            build_or_open("scifact", classic_bm25=True).directory,
            RERANKER,
            split="train",
            settings=RerankerTraining(epochs=1) if QUICK else RerankerTraining(),
            overwrite=True,
        )
        print("trained reranker:", json.dumps(report.to_dict()), flush=True)
    return RERANKER


TRAINED_PIPELINES = ("dense", "dense+bm25+splade calibrated", "3-way calibrated + ce blend 0.5")


def trained_collection() -> densekit.Collection:
    """SciFact's corpus indexed with the default-recipe model (and BM25, SPLADE-tiny)."""
    from train import DEFAULT_ROW, MODELS, _slug, default_recipe, train_row

    model = MODELS / _slug(DEFAULT_ROW)
    if not (model / "config.json").exists():
        train_row(default_recipe(), model)
    out = BUILD / "scifact-default-recipe-splade-tiny"
    card = json.loads((model / "densekit_training.json").read_text())
    kept = out / "model_card.json"
    options = densekit.BuildOptions(
        model=str(model), retriever="hybrid", sparse="splade-tiny", cache_dir=None
    )
    # Built again when the model's training changed, not only its build options.
    same_model = kept.exists() and json.loads(kept.read_text()) == card
    collection = build_once(
        dataset("scifact") / "corpus.jsonl", out, options, rebuild=not same_model
    )
    (out / "model_card.json").write_text(json.dumps(card))  # which training it indexes
    return collection


def latency_ms(collection: densekit.Collection, pipeline: Pipeline, queries: list[str]) -> float:
    searcher = collection.searcher(pipeline=pipeline)
    searcher.rank(queries[:2], 10)  # warm-up: models loaded, caches filled
    started = time.perf_counter()
    for query in queries:
        searcher.rank([query], 10)
    return round(1000 * (time.perf_counter() - started) / len(queries), 1)


def evaluate_all(
    name: str,
    found: dict[str, Pipeline],
    metrics: list[str],
    done: dict[str, dict],
    collection: densekit.Collection | None = None,
) -> dict:
    """Each pipeline's metrics and costs; ``done`` holds results of an interrupted run."""
    collection = collection or build_or_open(name, sparse="splade-tiny")
    data = load_beir(dataset(name), "test")
    queries = list(data.queries.values())[:LATENCY_QUERIES]
    for label, pipeline in found.items():
        # SciFact's results also hold per-query scores; older ones lack them.
        if label in done and (name != "scifact" or "per_query" in done[label]):
            continue
        report = densekit.evaluate(data, collection=collection, metrics=metrics, pipeline=pipeline)
        entry = {m: round(v, 4) for m, v in report.metrics.items()}
        if name == "scifact":  # the cross-encoder learned from SciFact train's judgements
            entry["seen_unseen"] = seen_unseen(report.per_query)
            entry["per_query"] = report.per_query
        entry["latency_ms_per_query"] = latency_ms(collection, pipeline, queries)
        entry["stages"] = report.stages
        done[label] = entry
        shown = {key: value for key, value in entry.items() if key != "per_query"}
        print(f"{name} {label}: {json.dumps(shown)}", flush=True)
        save()
    return done


def rerank_tests(scifact: dict) -> dict:
    """Paired tests of each reranker against the first stage, on all SciFact test queries and
    on those whose relevant documents no train query judged (unseen)."""
    return {
        f"{b} vs {a}": paired_tests_with_unseen(
            scifact[a]["per_query"], scifact[b]["per_query"], "nDCG@10"
        )
        for a, b in RERANK_COMPARISONS
        if a in scifact and b in scifact
    }


RESULTS_DATA: dict = {}


def save() -> None:
    write_json("pipeline", RESULTS_DATA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--retrain", action="store_true", help="train the reranker again")
    parser.add_argument("--fresh", action="store_true", help="measure everything again")
    args = parser.parse_args()
    reranker = ensure_reranker(args.retrain)
    previous = RESULTS / "pipeline.json"
    every = pipelines(reranker)
    if previous.exists() and not args.fresh:
        RESULTS_DATA.update(json.loads(previous.read_text()))
    card = json.loads((reranker / "densekit_training.json").read_text())
    if RESULTS_DATA.get("reranker_training") != card:  # another model: measure its pipelines
        for label, pipeline in every.items():
            if any(stage.kind == "cross-encoder" for stage in pipeline.rerank):
                RESULTS_DATA.get("scifact", {}).pop(label, None)
    RESULTS_DATA["environment"] = environment()
    RESULTS_DATA["reranker_training"] = card
    scifact = RESULTS_DATA.setdefault("scifact", {})
    evaluate_all("scifact", every, ["nDCG@10", "R@100"], scifact)
    RESULTS_DATA["rerank_tests"] = rerank_tests(scifact)
    save()
    for label, test in RESULTS_DATA["rerank_tests"].items():
        print("scifact", label, json.dumps(test), flush=True)
    # The rerankers run on SciFact only: the cross-encoder is SciFact-trained, UPR is costly.
    others = {label: p for label, p in every.items() if not p.rerank}
    if QUICK:  # the same code path for every first stage: two of them are enough
        others = {label: others[label] for label in ("dense", "dense+bm25+splade calibrated")}
    evaluate_all("limit-small", others, ["R@2", "R@10"], RESULTS_DATA.setdefault("limit_small", {}))
    evaluate_all("cranfield", others, ["nDCG@10"], RESULTS_DATA.setdefault("cranfield", {}))
    trained = RESULTS_DATA.setdefault("scifact_trained", {})
    collection = trained_collection()
    card = json.loads((collection.directory / "model_card.json").read_text())
    if trained.get("model_training") != card:
        trained.clear()
        trained["model_training"] = card
    results = trained.setdefault("results", {})
    found = {label: every[label] for label in TRAINED_PIPELINES}
    evaluate_all("scifact", found, ["nDCG@10", "R@100"], results, collection)
    trained["rerank_tests"] = {
        "3-way calibrated + ce blend 0.5 vs dense+bm25+splade calibrated": paired_tests_with_unseen(
            results["dense+bm25+splade calibrated"]["per_query"],
            results["3-way calibrated + ce blend 0.5"]["per_query"],
            "nDCG@10",
        )
    }
    save()
    print("wrote benchmarks/results/pipeline.json")


if __name__ == "__main__":
    main()
