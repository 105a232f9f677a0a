"""MVP (multi-view listwise) reranking against the cross-encoder, UPR and RankGPT-style
sliding-window listwise reranking, on SciFact, with transfer to Cranfield and CiteSeer.

    .venv/bin/python benchmarks/mvp.py [--parts quality,order,views,transfer]
                                       [--sample 100] [--fresh]

- first, the models: MVP, `densekit train-reranker --kind mvp` from the bundled MiniLM on
  SciFact's train split (4 views, orthogonality 0.1, 2 epochs, 7 mined negatives per query and
  epoch), and the cross-encoder of benchmarks/pipeline.py (its default recipe), negatives
  mined from the same collection; both see train judgements only. Each is trained once and
  kept (trained again when its settings change).
- quality: the default hybrid's top 20 and top 50 of each SciFact test query reranked by MVP,
  the cross-encoder, UPR (`kind = "llm"`, SmolLM2-135M) and sliding-window listwise
  (`kind = "listwise"`, SmolLM2-135M-Instruct, window 20, step 10, passages cut to 100
  tokens): nDCG@10, latency per query and passages per second as the pipeline measured them,
  per-query scores and paired tests (t-test, randomisation) of every pair of rerankers (on the
  queries both ran), on all test queries and on the unseen ones (no relevant document judged
  for a train query). MVP and the cross-encoder rerank all 300 queries; UPR and listwise, which
  cost an LLM pass per passage or a generation per window on this CPU, a seeded sample of
  ``--sample`` queries (the first stage and the others are scored on that sample too).
- order: order sensitivity of MVP, listwise and (for reference, pointwise) the cross-encoder.
  For a seeded sample of 20 queries (``--order-queries``), the hybrid's top 20 in 10 random
  permutations: Kendall's tau between each permutation's output scores and the first's.
- views: MVP with 1, 2, 4 and 8 views and with 4 views and no orthogonality loss, each trained
  one epoch (the ablation's recipe), reranking SciFact's top 20; paired tests against 4 views.
- transfer: the SciFact-trained MVP and cross-encoder reranking the top 20 of Cranfield (graded
  0-4) and CiteSeer citation queries, never trained on either.

Each result is saved as it is measured; a rerun measures only what is missing (``--fresh``:
everything again). Writes benchmarks/results/mvp.json and mvp.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    BUILD,
    QUICK,
    RESULTS,
    build_or_open,
    dataset,
    environment,
    paired_tests_with_unseen,
    write_json,
)
from pipeline import ensure_reranker

import densekit
from densekit.evaluate.beir import BeirDataset, load_beir
from densekit.evaluate.splits import seen_breakdown
from densekit.retrieve import Pipeline, RerankStage
from densekit.retrieve.pipeline import builtin_pipeline
from densekit.retrieve.rerankers import load_reranker
from densekit.train import MultiViewTraining, train_reranker

MVP = BUILD / "scifact-mvp"
# QUICK: one short epoch and small samples, to check the script; not the published numbers.
MAIN = MultiViewTraining(epochs=1, negatives=3) if QUICK else MultiViewTraining()
ABLATION = {"epochs": 1, "negatives": 3} if QUICK else {"epochs": 1}
VIEW_COUNTS = (2, 4) if QUICK else (1, 2, 4, 8)
DEPTH = 10 if QUICK else 20  # the top reranked by the order, views and transfer parts
DEPTHS = (DEPTH,) if QUICK else (20, 50)
ORDER_QUERIES, PERMUTATIONS = (2, 2) if QUICK else (20, 10)
RERANKED_QUERIES = 20 if QUICK else None  # test queries reranked (QUICK: a sample of them)
LLM = "smollm2"
RERANKERS = ("mvp", "cross-encoder", "upr", "listwise")
SAMPLED = ("upr", "listwise")  # rerankers run on the sample only
TRANSFER = ("cranfield", "citeseer-cites")
# Order sensitivity of the listwise rerankers, and a pointwise one for reference (UPR, also
# pointwise, costs an LLM pass per passage and permutation).
ORDERED = ("mvp", "listwise", "cross-encoder")
RESULTS_DATA: dict[str, Any] = {}


def save() -> None:
    RESULTS_DATA["environment"] = environment()
    write_json("mvp", RESULTS_DATA)


def ensure_mvp(folder: Path, settings: MultiViewTraining) -> Path:
    """The MVP model at ``folder``, trained with ``settings`` unless it already was."""
    card = folder / "densekit_training.json"
    wanted = json.loads(json.dumps(dataclasses.asdict(settings), default=str))
    if card.exists() and _same_settings(json.loads(card.read_text())["settings"], wanted):
        return folder
    report = train_reranker(
        dataset("scifact"),
        # Negatives mined as for the cross-encoder (benchmarks/pipeline.py): the same pools.
        build_or_open("scifact", classic_bm25=True).directory,
        folder,
        settings=settings,
        overwrite=True,
    )
    print("trained", folder.name, json.dumps(report.to_dict()), flush=True)
    return folder


def _same_settings(kept: dict, wanted: dict) -> bool:
    keys = set(wanted) - {"mining"}
    return all(kept.get(key) == wanted[key] for key in keys)


def stage(reranker: str, depth: int, model: Path | None = None) -> RerankStage:
    if reranker == "mvp":
        return RerankStage(str(model or MVP), kind="mvp", top_n=depth, batch=32)
    if reranker == "cross-encoder":
        return RerankStage(str(model), top_n=depth, batch=32)
    if reranker == "upr":
        return RerankStage(LLM, kind="llm", top_n=depth, batch=8)
    return RerankStage(LLM, kind="listwise", top_n=depth, window=20, step=10)


def hybrid_with(rerank: RerankStage | None, name: str) -> Pipeline:
    hybrid = builtin_pipeline("hybrid")
    return Pipeline(hybrid.candidates, hybrid.fusion, (rerank,) if rerank else (), name=name)


def sample_of(data: BeirDataset, size: int, seed: int = 0) -> BeirDataset:
    chosen = sorted(np.random.default_rng(seed).choice(sorted(data.queries), size, replace=False))
    return dataclasses.replace(
        data,
        queries={q: data.queries[q] for q in chosen},
        qrels={q: data.qrels[q] for q in chosen if q in data.qrels},
    )


def test_queries(name: str) -> BeirDataset:
    """The test split of ``name``, or its RERANKED_QUERIES sample."""
    data = load_beir(dataset(name), "test")
    if RERANKED_QUERIES is None or len(data.queries) <= RERANKED_QUERIES:
        return data
    return sample_of(data, RERANKED_QUERIES)


def measure(collection: Any, data: BeirDataset, pipeline: Pipeline) -> dict[str, Any]:
    report = densekit.evaluate(data, collection=collection, metrics=["nDCG@10"], pipeline=pipeline)
    rerank = report.stages[-1] if pipeline.rerank else None
    entry: dict[str, Any] = {"nDCG@10": round(report.metrics["nDCG@10"], 4)}
    entry["queries"] = report.queries
    if rerank is not None:
        entry["rerank_ms_per_query"] = rerank["ms_per_query"]
        entry["passages_per_second"] = rerank["passages_per_second"]
    entry["per_query"] = report.per_query
    return entry


def quality(sample: int, models: dict[str, Path], depth: int, names: tuple[str, ...]) -> None:
    """The hybrid's top ``depth`` reranked by each of ``names``."""
    collection = build_or_open("scifact")
    full = test_queries("scifact")
    sampled = sample_of(full, min(sample, len(full.queries)))
    section = RESULTS_DATA.setdefault("quality", {})
    runs = section.setdefault(f"top{depth}", {})
    if runs.get("sample_queries") != len(sampled.queries):  # another sample: measure again
        for label in ("hybrid on sample", *SAMPLED):
            runs.pop(label, None)
    runs["sample_queries"] = len(sampled.queries)
    jobs = [("hybrid", full, None), ("hybrid on sample", sampled, None)]
    jobs += [(name, sampled if name in SAMPLED else full, name) for name in names]
    for label, data, reranker in jobs:
        if label in runs:
            continue
        rerank = stage(reranker, depth, models.get(reranker)) if reranker else None
        started = time.perf_counter()
        runs[label] = measure(collection, data, hybrid_with(rerank, label))
        runs[label]["seconds"] = round(time.perf_counter() - started, 1)
        shown = {k: v for k, v in runs[label].items() if k != "per_query"}
        print(f"top{depth} {label}: {json.dumps(shown)}", flush=True)
        save()
    section[f"top{depth}_tests"] = pair_tests(runs)
    save()


def pair_tests(runs: dict[str, dict]) -> dict[str, Any]:
    """Every reranker against the first stage and against each other, on shared queries."""
    names = ["hybrid", *[name for name in RERANKERS if name in runs]]
    tests = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            first = runs["hybrid on sample"] if b in SAMPLED and a == "hybrid" else runs[a]
            shared = set(first["per_query"]) & set(runs[b]["per_query"])
            tests[f"{b} vs {a}"] = paired_tests_with_unseen(
                {q: first["per_query"][q] for q in shared},
                {q: runs[b]["per_query"][q] for q in shared},
                "nDCG@10",
            )
    return tests


def order_sensitivity(models: dict[str, Path], queries: int) -> None:
    """Kendall's tau of each reranker's output over random permutations of its input."""
    from scipy.stats import kendalltau

    collection = build_or_open("scifact")
    data = sample_of(load_beir(dataset("scifact"), "test"), queries, seed=1)
    section = RESULTS_DATA.setdefault("order", {})
    for name in ORDERED:
        if name in section:
            continue
        reranker = load_reranker(stage(name, DEPTH, models.get(name)), name)
        taus = []
        for query in data.queries.values():
            hits = collection.search(query, DEPTH, retriever="hybrid")
            texts = [collection.documents.get(hit.id).content for hit in hits]
            rng = np.random.default_rng(0)
            rankings = []
            for _ in range(PERMUTATIONS):
                order = rng.permutation(len(texts))
                scores = np.empty(len(texts))
                scores[order] = score_list(reranker, query, [texts[i] for i in order])
                rankings.append(scores)
            taus += [float(kendalltau(rankings[0], other)[0]) for other in rankings[1:]]
        section[name] = {
            "queries": len(data.queries),
            "permutations": PERMUTATIONS,
            "mean_tau": round(float(np.mean(taus)), 4),
            "min_tau": round(float(np.min(taus)), 4),
            "share_tau_one": round(float(np.mean(np.isclose(taus, 1.0))), 4),
        }
        print("order", name, json.dumps(section[name]), flush=True)
        save()


def score_list(reranker: Any, query: str, texts: list[str]) -> np.ndarray:
    if hasattr(reranker, "score_lists"):
        return reranker.score_lists([query], [texts])[0]
    return reranker.score([(query, text) for text in texts])


def views_ablation() -> None:
    collection = build_or_open("scifact")
    data = test_queries("scifact")
    section = RESULTS_DATA.setdefault("views", {})
    variants = {f"{v} views": {"views": v} for v in VIEW_COUNTS}
    variants["4 views, no orthogonality loss"] = {"views": 4, "orthogonality": 0.0}
    for label, change in variants.items():
        settings = MultiViewTraining(**{**ABLATION, **change})
        if section.get(label, {}).get("settings") == {**ABLATION, **change}:
            continue
        slug = label.replace(" ", "-").replace(",", "")
        # The main model when its recipe is the variant's (QUICK): trained once.
        folder = MVP if settings == MAIN else BUILD / f"scifact-mvp-ablation-{slug}"
        model = ensure_mvp(folder, settings)
        section[label] = measure(collection, data, hybrid_with(stage("mvp", DEPTH, model), label))
        section[label]["settings"] = {**ABLATION, **change}
        print("views", label, section[label]["nDCG@10"], flush=True)
        save()
    reference = section.get("4 views")
    if reference:
        section["tests_against_4_views"] = {
            label: paired_tests_with_unseen(reference["per_query"], entry["per_query"], "nDCG@10")
            for label, entry in section.items()
            if isinstance(entry, dict) and "per_query" in entry and label != "4 views"
        }
        save()


def transfer(models: dict[str, Path]) -> None:
    from _common import paired_tests

    section = RESULTS_DATA.setdefault("transfer", {})
    for name in TRANSFER:
        collection = build_or_open(name)
        data = test_queries(name)
        runs = section.setdefault(name, {})
        for label in ("hybrid", "mvp", "cross-encoder"):
            if label in runs:
                continue
            rerank = None if label == "hybrid" else stage(label, DEPTH, models[label])
            runs[label] = measure(collection, data, hybrid_with(rerank, label))
            print("transfer", name, label, runs[label]["nDCG@10"], flush=True)
            save()
        runs["tests"] = {
            f"{b} vs {a}": paired_tests(runs[a]["per_query"], runs[b]["per_query"], "nDCG@10")
            for a, b in (("hybrid", "mvp"), ("hybrid", "cross-encoder"), ("cross-encoder", "mvp"))
        }
        save()


def unseen_share() -> dict[str, int]:
    train, test = load_beir(dataset("scifact"), "train"), load_beir(dataset("scifact"), "test")
    breakdown = seen_breakdown(train.qrels, test.qrels, train.queries | test.queries)
    return {"unseen_test_queries": len(breakdown.none), "test_queries": len(test.queries)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="quality,order,views,transfer")
    parser.add_argument("--sample", type=int, default=5 if QUICK else 100)
    parser.add_argument(
        "--order-queries",
        type=int,
        default=ORDER_QUERIES,
        help="queries of the order test (each entry records its own)",
    )
    parser.add_argument("--fresh", action="store_true", help="measure everything again")
    args = parser.parse_args()
    previous = RESULTS / "mvp.json"
    if previous.exists() and not args.fresh:
        RESULTS_DATA.update(json.loads(previous.read_text()))
    parts = set(filter(None, args.parts.split(",")))
    models = {"mvp": ensure_mvp(MVP, MAIN), "cross-encoder": ensure_reranker(False)}
    for name, folder in models.items():
        card = json.loads((folder / "densekit_training.json").read_text())
        if RESULTS_DATA.get("training", {}).get(name) != card:  # another model: measure again
            for key in ("quality", "order", "transfer"):
                RESULTS_DATA.pop(key, None)
        RESULTS_DATA.setdefault("training", {})[name] = card
    RESULTS_DATA["scifact"] = unseen_share()
    save()
    # The cheap and the asked-for first: a long run shows its main numbers early.
    steps = [
        ("quality", lambda: quality(args.sample, models, DEPTHS[0], RERANKERS)),
        ("order", lambda: order_sensitivity(models, args.order_queries)),
        ("quality", lambda: quality(args.sample, models, DEPTHS[-1], ("mvp", "cross-encoder"))),
        ("transfer", lambda: transfer(models)),
        ("views", views_ablation),
        ("quality", lambda: quality(args.sample, models, DEPTHS[-1], RERANKERS)),
    ]
    for part, run in steps:
        if part in parts:
            run()
            plot(RESULTS / "mvp.png")


def plot(path: Path) -> None:
    """nDCG@10 and rerank latency per reranker and depth (latency on a log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quality_runs = RESULTS_DATA.get("quality", {})
    depths = [d for d in DEPTHS if f"top{d}" in quality_runs]
    if not depths:
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(depths)
    ticks = np.arange(len(RERANKERS))
    for i, depth in enumerate(depths):
        runs = quality_runs[f"top{depth}"]
        names = [n for n in RERANKERS if n in runs]
        x = np.array([RERANKERS.index(n) for n in names]) + i * width
        left.bar(x, [runs[n]["nDCG@10"] for n in names], width, label=f"top {depth}")
        right.bar(x, [runs[n]["rerank_ms_per_query"] for n in names], width, label=f"top {depth}")
    for axes in (left, right):
        axes.set_xticks(ticks + width * (len(depths) - 1) / 2, RERANKERS)
    if "hybrid" in quality_runs[f"top{depths[0]}"]:
        left.axhline(quality_runs[f"top{depths[0]}"]["hybrid"]["nDCG@10"], color="gray", ls="--")
    left.set_ylabel("SciFact test nDCG@10 (dashed: hybrid)")
    right.set_ylabel("rerank ms per query (log)")
    right.set_yscale("log")
    left.legend()
    figure.suptitle("MVP vs cross-encoder, UPR and listwise reranking (SciFact; 2-core CPU)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
