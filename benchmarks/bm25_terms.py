"""What BM25's extra terms (exact word forms, adjacent word pairs) give and cost, alone.

    .venv/bin/python benchmarks/bm25_terms.py

A hybrid collection's BM25 index also holds each word as written and each pair of adjacent
words, weighted 0.25 each against a stem's 1 (densekit.index.lexical.HYBRID_TERMS; chosen with
the fusion rule by benchmarks/fusion_rule.py, which measures them inside the fused default).
Here BM25 alone: on every judged dataset of ../shared/datasets, the test split's nDCG@10 (and
R@2 on LIMIT-small) of classic BM25 (stems only, what a `--retriever bm25` collection builds)
and of the hybrid's BM25, with a paired test; and on SciFact, what the extra terms cost: build
seconds, index bytes on disk, vocabulary and postings, and milliseconds per query (all test
queries, one at a time, best of 3 rounds, both indexes in this process), against plain bm25s
built and searched from its own tokenizer in the same run (the anchor densekit's classic BM25
wraps).

Writes benchmarks/results/bm25_terms.json.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from _common import dataset, environment, paired_tests, write_json

from densekit.corpus.readers import read_corpus
from densekit.evaluate.beir import load_beir
from densekit.evaluate.metrics import compute_metrics
from densekit.index.lexical import CLASSIC_TERMS, HYBRID_TERMS, LexicalIndex, TermWeights

DATASETS = ("scifact", "cranfield", "limit-small", "citeseer-cites")
VARIANTS = {"classic": CLASSIC_TERMS, "hybrid terms": HYBRID_TERMS}
ROUNDS = 3


def corpus(name: str) -> tuple[list[str], list[str]]:
    """Ids and texts as a collection reads and indexes them (empty documents left out)."""
    documents = list(read_corpus(dataset(name) / "corpus.jsonl"))
    return [d.id for d in documents], [d.content for d in documents]


def quality(name: str) -> dict:
    ids, texts = corpus(name)
    data = load_beir(dataset(name), "test")
    qids = [q for q in data.qrels if q in data.queries]
    queries = [data.queries[q] for q in qids]
    metrics = ["R@2", "nDCG@10"] if name == "limit-small" else ["nDCG@10"]
    scores, per_query = {}, {}
    for label, terms in VARIANTS.items():
        index = LexicalIndex.build(texts, terms=terms)
        run = {
            qid: {ids[row]: float(score) for row, score in zip(rows, found, strict=True)}
            for qid, (rows, found) in zip(qids, index.search(queries, 100), strict=True)
        }
        report = compute_metrics({q: data.qrels[q] for q in qids}, run, metrics)
        scores[label] = {m: round(v, 4) for m, v in report.aggregate.items()}
        per_query[label] = report.per_query
    test = paired_tests(per_query["classic"], per_query["hybrid terms"], metrics[0])
    print(name, json.dumps(scores), flush=True)
    return {"queries": len(qids), "scores": scores, "hybrid_terms_vs_classic": test}


def size_on_disk(index: LexicalIndex) -> int:
    with tempfile.TemporaryDirectory() as folder:
        index.save(Path(folder))
        return sum(p.stat().st_size for p in Path(folder).iterdir())


def best_ms_per_query(search, queries: list[str]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for query in queries:
            search(query)
        best = min(best, (time.perf_counter() - started) / len(queries))
    return round(best * 1000, 3)


def cost(name: str = "scifact") -> dict:
    import bm25s
    import Stemmer

    _, texts = corpus(name)
    data = load_beir(dataset(name), "test")
    queries = [data.queries[q] for q in data.qrels if q in data.queries]
    result: dict = {"documents": len(texts), "queries": len(queries)}
    stemmer = Stemmer.Stemmer("english")
    started = time.perf_counter()
    anchor = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    anchor.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False))
    anchor_seconds = time.perf_counter() - started

    def anchor_search(query: str) -> None:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False)
        anchor.retrieve(tokens, k=100, show_progress=False, n_threads=1)

    result["bm25s"] = {
        "build_seconds": round(anchor_seconds, 2),
        "ms_per_query": best_ms_per_query(anchor_search, queries),
    }
    for label, terms in VARIANTS.items():
        result[label] = measure_index(texts, queries, terms)
    for label in VARIANTS:
        for key in ("build_seconds", "ms_per_query"):
            result[label][f"{key}_vs_bm25s"] = round(result[label][key] / result["bm25s"][key], 2)
    classic, hybrid = result["classic"], result["hybrid terms"]
    result["hybrid_terms_vs_classic"] = {
        key: round(hybrid[key] / classic[key], 2)
        for key in ("build_seconds", "bytes", "vocabulary", "postings", "ms_per_query")
    }
    print(name, json.dumps(result), flush=True)
    return result


def measure_index(texts: list[str], queries: list[str], terms: TermWeights) -> dict:
    started = time.perf_counter()
    index = LexicalIndex.build(texts, terms=terms)
    seconds = time.perf_counter() - started
    return {
        "build_seconds": round(seconds, 2),
        "bytes": size_on_disk(index),
        "vocabulary": len(index.retriever.vocab_dict),
        "postings": len(index.retriever.scores["data"]),
        "ms_per_query": best_ms_per_query(lambda q: index.search([q], 100), queries),
    }


def main() -> None:
    result = {
        "environment": environment(),
        "weights": {"classic": vars(CLASSIC_TERMS), "hybrid terms": vars(HYBRID_TERMS)},
        "datasets": {name: quality(name) for name in DATASETS},
        "cost": cost(),
    }
    worst = min(
        d["hybrid_terms_vs_classic"]["mean_difference"] for d in result["datasets"].values()
    )
    result["worst_difference"] = worst
    print("wrote", write_json("bm25_terms", result))


if __name__ == "__main__":
    main()
