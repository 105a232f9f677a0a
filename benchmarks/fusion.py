"""Is the default fusion safe on every collection? Each list alone against every fusion.

.venv/bin/python benchmarks/fusion.py [--only NAME ...]

On every judged dataset in ../shared/datasets (scifact, cranfield, limit-small, citeseer-
cites), on the keyword and span query sets `densekit make-queries` builds from the SciFact and
Cranfield corpora (500 queries each, seed 0), where BM25 is the stronger list, and on two sets
where it is the weaker: SciFact's test queries with typos (half the words of four letters or
more get one swap, drop or substitution, seed 0) and STS-B paraphrase retrieval (each test pair
scored 4 or more: find the second sentence, among every second sentence of STS-B, from the
first). LIMIT-small also in a collection whose BM25 matches words exactly (`densekit index
--stemmer none`). nDCG@10 (and R@2 on LIMIT-small) of dense (MiniLM), BM25, the default
(calibrated per query: dense as deviations above random documents, BM25 as the share of the
query's ceiling matched, BM25's weight set per query by benchmarks/fusion_rule.py's rule), the
fixed convex fusion of collections built before (min-max, 0.4/0.6), the same weights over
z-scores, RRF (k 60) and fusion tuned by `densekit tune` (on SciFact: chosen on the train
split, measured on test; elsewhere, where there is one judged split, its 5-fold cross-validated
score on that split); the same for three-way fusion with SPLADE-tiny. Each fusion is tested
(paired t-test, randomisation test) against the better of its lists alone on that dataset: the
default is safe where it is not significantly worse, and it must stay within 0.005 of the
better list. ``bm25_weight`` records calibrated fusion with fixed BM25 weights instead (dense
1).

Writes benchmarks/results/fusion.json and fusion.png.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import time
from dataclasses import replace
from pathlib import Path

from _common import (
    BUILD,
    QUICK,
    QUICK_DOCUMENTS,
    QUICK_QUERIES,
    RESULTS,
    build_once,
    build_or_open,
    dataset,
    environment,
    paired_tests,
    write_json,
)
from pipeline import pipelines

import densekit
from densekit.evaluate.beir import load_beir
from densekit.retrieve import DEFAULT_FUSION, CandidateStage, FusionConfig, Pipeline

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
# LIMIT-small in a collection whose BM25 has no stemmer.
EXACT_WORDS = "limit-small-exact-words"
# Where BM25 is the weaker list (made by typo_queries and paraphrase_set).
WEAK_LEXICAL = ("scifact-typos", "stsb-paraphrase")
TWO_WAY = {"dense": "dense", "bm25": "bm25", "rrf": "dense+bm25 rrf"}
THREE_WAY = {
    "splade": "splade",
    "3-way convex": "dense+bm25+splade convex",
    "3-way rrf": "dense+bm25+splade rrf",
}
BM25_WEIGHTS = (4, 8, 12, 16, 24, 32)
FIXED_CONVEX = FusionConfig.hybrid("convex", alpha=0.4)


def query_set(corpus: str, task: str) -> Path:
    """A `densekit make-queries` test set over ``corpus``'s documents, made once."""
    out = BUILD / "fusion-query-sets" / f"{corpus}-{task}"
    if not (out / "qrels" / "test.tsv").exists():
        from densekit.evaluate.query_sets import QuerySetSpec, make_queries

        n = 100 if QUICK else 500
        spec = QuerySetSpec(task=task, n=n, seed=0)
        make_queries(dataset(corpus) / "corpus.jsonl", out, spec, overwrite=True)
    return out


def typo_queries() -> Path:
    """SciFact's test queries with typos, over SciFact's corpus, made once."""
    out = BUILD / "fusion-query-sets" / "scifact-typos"
    if not (out / "qrels" / "test.tsv").exists():
        source, rng = dataset("scifact"), random.Random(0)

        def typo(word: str) -> str:
            if len(word) < 4 or rng.random() >= 0.5:
                return word
            at, edit = rng.randrange(1, len(word) - 1), rng.randrange(3)
            if edit == 0:  # swap two letters
                return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
            if edit == 1:  # drop one
                return word[:at] + word[at + 1 :]
            return word[:at] + rng.choice("aeiourstln") + word[at + 1 :]

        (out / "qrels").mkdir(parents=True, exist_ok=True)
        (out / "qrels" / "test.tsv").write_text((source / "qrels" / "test.tsv").read_text())
        with open(out / "queries.jsonl", "w", encoding="utf-8") as queries:
            for line in (source / "queries.jsonl").read_text().splitlines():
                query = json.loads(line)
                query["text"] = re.sub(r"[A-Za-z]+", lambda m: typo(m.group()), query["text"])
                queries.write(json.dumps(query) + "\n")
    return out


def paraphrase_set() -> Path:
    """STS-B as paraphrase retrieval: corpus = every distinct second sentence of its three
    splits; queries = first sentences of test pairs scored 4 or more (not the same text);
    relevant = that pair's second sentence. Made once."""
    out = BUILD / "fusion-query-sets" / "stsb-paraphrase"
    if (out / "qrels" / "test.tsv").exists():
        return out
    ids: dict[str, str] = {}
    queries: list[tuple[str, str, str]] = []
    for split in ("train", "dev", "test"):
        with open(dataset("stsb") / f"{split}.tsv", encoding="utf-8") as rows:
            for row in csv.DictReader(rows, delimiter="\t", quoting=csv.QUOTE_NONE):
                second = row["sentence2"]
                ids.setdefault(second, f"s{len(ids)}")
                first = row["sentence1"]
                close = float(row["score"]) >= 4.0
                if split == "test" and close and first.strip().lower() != second.strip().lower():
                    queries.append((f"q{len(queries)}", first, ids[second]))
    if QUICK:  # cut as the BEIR sets are: the first queries, their answers, then others
        queries = queries[:QUICK_QUERIES]
        answers = {answer for _, _, answer in queries}
        others = [i for i in ids.values() if i not in answers][: QUICK_DOCUMENTS - len(answers)]
        kept = answers | set(others)
        ids = {text: i for text, i in ids.items() if i in kept}
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    corpus = "".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for t, i in ids.items())
    (out / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    lines = "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t, _ in queries)
    (out / "queries.jsonl").write_text(lines, encoding="utf-8")
    judged = "".join(f"{q}\t{d}\t1\n" for q, _, d in queries)
    (out / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + judged)
    return out


def own_collection(folder: Path, name: str, stemmer: str = "english") -> densekit.Collection:
    """A hybrid collection (with SPLADE-tiny) of ``folder``'s corpus, built once."""
    out = BUILD / f"{name}-minilm-splade-tiny"
    options = densekit.BuildOptions(
        model="minilm",
        retriever="hybrid",
        sparse="splade-tiny",
        cache_dir=None,
        bm25_stemmer=stemmer,
    )
    return build_once(folder / "corpus.jsonl", out, options)


def measure(label: str, folder: Path, collection: densekit.Collection, metrics: list[str]) -> dict:
    data = load_beir(folder, "test")
    every = pipelines(reranker=densekit.__file__)  # no rerank stage runs here
    stages = (CandidateStage("dense", None), CandidateStage("bm25", None))
    three = (*stages, CandidateStage("splade", None))
    z_score = replace(FIXED_CONVEX, normalization="z-score")
    rows = {
        "default": Pipeline(stages, DEFAULT_FUSION, name="default"),
        "fixed convex": Pipeline(stages, FIXED_CONVEX, name="fixed convex"),
        "z-score": Pipeline(stages, z_score, name="z-score"),
        "3-way calibrated": Pipeline(three, DEFAULT_FUSION, name="3-way calibrated"),
    }
    rows |= {name: every[key] for name, key in {**TWO_WAY, **THREE_WAY}.items()}
    sweep = {
        f"bm25 weight {weight}": Pipeline(
            stages, FusionConfig("calibrated", weights=(1.0, float(weight))), name=str(weight)
        )
        for weight in BM25_WEIGHTS
    }
    scores, per_query = {}, {}
    for name, pipeline in (rows | sweep).items():
        report = densekit.evaluate(data, collection=collection, pipeline=pipeline, metrics=metrics)
        scores[name] = {m: round(v, 4) for m, v in report.metrics.items()}
        per_query[name] = report.per_query
    main = metrics[0]
    weights = {weight: scores.pop(f"bm25 weight {weight}")[main] for weight in BM25_WEIGHTS}
    result: dict = {"queries": len(per_query["dense"]), "measure": main, "scores": scores}
    result["bm25_weight"] = weights
    result["tuned"] = tuned(folder, collection, main)
    tests = {}
    for fused, parts in (
        ("default", ("dense", "bm25")),
        ("fixed convex", ("dense", "bm25")),
        ("z-score", ("dense", "bm25")),
        ("rrf", ("dense", "bm25")),
        ("3-way calibrated", ("dense", "bm25", "splade")),
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


def tuned(folder: Path, collection: densekit.Collection, metric: str) -> dict:
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
    series = ["dense", "bm25", "default", "fixed convex", "rrf", "splade", "3-way calibrated"]
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
    parser.add_argument(
        "--only",
        nargs="*",
        # QUICK: one set of each kind, enough to run every code path.
        default=["scifact", "scifact-keyword", EXACT_WORDS, "stsb-paraphrase"] if QUICK else [],
        help="datasets or query sets to measure",
    )
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
        collection = build_or_open(corpus, sparse="splade-tiny")
        results[name] = measure(name, dataset(folder), collection, metrics)
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
        write_json("fusion", {"environment": environment(), "datasets": results})
    for name, (corpus, task) in QUERY_SETS.items():
        if wanted and name not in wanted:
            continue
        started = time.perf_counter()
        collection = build_or_open(corpus, sparse="splade-tiny")
        results[name] = measure(name, query_set(corpus, task), collection, ["nDCG@10"])
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
        write_json("fusion", {"environment": environment(), "datasets": results})
    if not wanted or EXACT_WORDS in wanted:
        # LIMIT-small's misses are BM25's stemmer conflating words ("Limes" with "Key Lime
        # Pies"): the same collection with BM25 matching words exactly (--stemmer none).
        started = time.perf_counter()
        folder = dataset("limit-small")
        collection = own_collection(folder, EXACT_WORDS, stemmer="none")
        results[EXACT_WORDS] = measure(EXACT_WORDS, folder, collection, ["R@2", "nDCG@10"])
        results[EXACT_WORDS]["seconds"] = round(time.perf_counter() - started, 1)
        write_json("fusion", {"environment": environment(), "datasets": results})
    for name in WEAK_LEXICAL:
        if wanted and name not in wanted:
            continue
        started = time.perf_counter()
        if name == "scifact-typos":
            folder, collection = typo_queries(), build_or_open("scifact", sparse="splade-tiny")
        else:
            folder = paraphrase_set()
            collection = own_collection(folder, name)
        results[name] = measure(name, folder, collection, ["nDCG@10"])
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
        write_json("fusion", {"environment": environment(), "datasets": results})
    plot(results)
    print("wrote benchmarks/results/fusion.json and fusion.png")


if __name__ == "__main__":
    main()
