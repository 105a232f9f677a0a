"""Multi-vector (late interaction) retrieval on SciFact: a ColBERT-style model trained from the
bundled MiniLM, beside MiniLM's single vectors, in quality, storage and query latency.

    .venv/bin/python benchmarks/multivector.py [--epochs 4] [--lr 2e-5]

1. Train: `densekit train --loss colbert` on SciFact train (hard negatives mined from a MiniLM
   hybrid collection of the corpus, BM25 and dense windows), from MiniLM with a new 128-d
   projection.
2. Index: one collection of the corpus with MiniLM vectors, BM25 and the model's token vectors
   (`densekit index --multivector MODEL`).
3. Evaluate on SciFact test: dense, multivector, and MaxSim reranking dense's and BM25's top
   100 (`[[rerank]] kind = "multivector"`); nDCG@10 and R@100, the multivector-vs-dense
   difference with paired tests on all test queries and on the unseen ones (no relevant
   document judged for a train query: where training cannot have learned which documents get
   cited), and scores by seen/unseen.
4. Storage per document (token vectors, token index, vs one float32 vector) and query latency
   (one query at a time, same process, same threads), median and p95 over the test queries,
   recorded under the process's OpenMP wait policy: `OMP_WAIT_POLICY=PASSIVE .venv/bin/python
   benchmarks/multivector.py --parts latency` measures the kept collection again with idle
   OpenMP threads sleeping instead of spinning (the spinning threads of one library's pool
   take the cores another library's next call needs).

5. `--parts disjoint`: the same training on a document-disjoint split of SciFact's judged
   queries (`densekit split --by document`, train and test pooled, test share 0.3, seed 0: no
   test query shares a relevant document with a training query), multi-vector against dense
   on its test queries, with paired tests: what late interaction adds where memorising cited
   documents cannot help.

Writes benchmarks/results/multivector.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    BUILD,
    QUICK,
    RESULTS,
    build_or_open,
    dataset,
    environment,
    paired_tests,
    paired_tests_with_unseen,
    seen_unseen,
    write_json,
)

import densekit
from densekit.retrieve import Pipeline
from densekit.train.late_interaction import LateInteractionTraining, train_late_interaction

MEASURES = ["nDCG@10", "R@100"]
RERANKED = {
    f"{first}+maxsim": Pipeline.from_dict(
        {
            "candidates": [{"retriever": first, "k": 100}],
            "rerank": [{"kind": "multivector", "top_n": 100}],
            "name": f"{first}+maxsim",
        }
    )
    for first in ("dense", "bm25")
}


def train(
    epochs: int, learning_rate: float, data: Path | None = None, name: str = "scifact-colbert"
) -> tuple[Path, dict[str, Any]]:
    mining = build_or_open("scifact")  # MiniLM hybrid: BM25 and dense windows to mine from
    out = BUILD / "models" / name
    settings = LateInteractionTraining(epochs=1 if QUICK else epochs, learning_rate=learning_rate)
    report = train_late_interaction(
        data or dataset("scifact"), mining, out, settings=settings, overwrite=True
    )
    print(report.summary()[0], flush=True)
    return out, dataclasses.asdict(report)


def index_corpus(model: Path, name: str) -> densekit.Collection:
    """SciFact's corpus with MiniLM vectors, BM25 and ``model``'s token vectors."""
    return densekit.build_collection(
        dataset("scifact") / "corpus.jsonl",
        BUILD / name,
        densekit.BuildOptions(model="minilm", retriever="hybrid", multivector=str(model)),
        overwrite=True,
    )


def storage(collection: densekit.Collection) -> dict[str, Any]:
    """Bytes per document of each representation, from the files the collection holds."""
    manifest, directory = collection.manifest, Path(collection.directory)
    documents = manifest.document_rows

    def size(prefix: str) -> int:
        return sum(n for name, n in manifest.files.items() if name.startswith(prefix))

    token_dir = manifest.multivector.directory
    dense = sum(manifest.files[shard] for shard in manifest.dense.shards)
    tokens = size(f"{token_dir}/tokens.npy") + size(f"{token_dir}/token_offsets.npy")
    token_index = size(f"{token_dir}/token_index.faiss")
    assert (directory / token_dir).is_dir()
    return {
        "documents": documents,
        "token_vectors_per_document": round(manifest.multivector.tokens / documents, 1),
        "dimension": manifest.multivector.dimension,
        "bytes_per_document": {
            "dense_float32": round(dense / documents),
            "token_vectors_int8": round(tokens / documents),
            "token_index": round(token_index / documents),
            "multivector_total": round((tokens + token_index) / documents),
        },
        "multivector_over_dense": round((tokens + token_index) / dense, 1),
        "token_index": manifest.multivector.token_index,
    }


def latency(collection: densekit.Collection, queries: list[str]) -> dict[str, Any]:
    """Milliseconds per query searched alone (encoding included), after one warm-up search."""
    timings = {}
    for name, search in (
        ("dense", {"retriever": "dense"}),
        ("multivector", {"retriever": "multivector"}),
        ("dense+maxsim", {"pipeline": RERANKED["dense+maxsim"]}),
    ):
        searcher = collection.searcher(**search)
        searcher.search(queries[:1], 10)
        seconds = []
        for query in queries:
            started = time.perf_counter()
            searcher.search([query], 10)
            seconds.append(time.perf_counter() - started)
        ordered = sorted(seconds)
        timings[name] = {
            "median_ms": round(1000 * statistics.median(ordered), 1),
            "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
        }
    dense = timings["dense"]["median_ms"]
    for name in ("multivector", "dense+maxsim"):
        timings[name]["median_over_dense"] = round(timings[name]["median_ms"] / dense, 1)
    return {"queries": len(queries), "k": 10, **timings}


def evaluate(collection: densekit.Collection) -> dict[str, Any]:
    data = densekit.load_beir(dataset("scifact"), "test")
    reports = {
        name: densekit.evaluate(data, collection=collection, metrics=MEASURES, **search)
        for name, search in (
            ("dense", {"retriever": "dense"}),
            ("bm25", {"retriever": "bm25"}),
            ("multivector", {"retriever": "multivector"}),
            *((name, {"pipeline": pipeline}) for name, pipeline in RERANKED.items()),
        )
    }
    found = {
        name: {m: round(v, 4) for m, v in report.metrics.items()}
        for name, report in reports.items()
    }
    for name, scores in found.items():
        print(name, scores, flush=True)
    dense, multivector = reports["dense"].per_query, reports["multivector"].per_query
    return {
        "metrics": found,
        "multivector_vs_dense": paired_tests_with_unseen(dense, multivector, "nDCG@10"),
        "by_seen": {
            "dense": seen_unseen(dense),
            "multivector": seen_unseen(multivector),
        },
        "queries": list(data.queries.values()),
    }


def document_disjoint(epochs: int, learning_rate: float) -> dict[str, Any]:
    from densekit.evaluate.splits import load_judged, split_by_document, write_split

    split = split_by_document(load_judged(dataset("scifact"), ["train", "test"]), 0.3, 0)
    folder = write_split(split, BUILD / "multivector-scifact-disjoint", overwrite=True)
    model, training = train(epochs, learning_rate, folder, "scifact-colbert-disjoint")
    collection = index_corpus(model, "multivector-scifact-disjoint-collection")
    test = densekit.load_beir(folder, "test")
    reports = {
        name: densekit.evaluate(test, collection=collection, retriever=name, metrics=MEASURES)
        for name in ("dense", "bm25", "multivector")
    }
    found = {
        name: {m: round(v, 4) for m, v in report.metrics.items()}
        for name, report in reports.items()
    }
    print("document-disjoint", found, flush=True)
    return {
        "split": {k: v for k, v in split.report().items() if k != "dropped"},
        "training": training,
        "metrics": found,
        "multivector_vs_dense": paired_tests(
            reports["dense"].per_query, reports["multivector"].per_query, "nDCG@10"
        ),
        "environment": environment(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument(
        "--parts",
        default="quality,latency,disjoint",
        help="quality: train, index, evaluate, storage; latency: query latency of the kept "
        "collection, in this process and in one whose idle OpenMP threads sleep; disjoint: "
        "train and evaluate on a document-disjoint split (default: all three)",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    path = RESULTS / "multivector.json"
    result: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if "quality" in parts:
        result = quality(args.epochs, args.lr)
        write_json("multivector", result)
    if "latency" in parts or "latency-here" in parts:
        result = measure_latency(result)
        write_json("multivector", result)
    if "latency" in parts and os.environ.get("OMP_WAIT_POLICY") != "PASSIVE":
        # The policy is read when OpenMP starts: a process of its own.
        again = [sys.executable, __file__, "--parts", "latency-here"]
        subprocess.run(again, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, check=True)
        result = json.loads(path.read_text())
    if "disjoint" in parts:
        result["document_disjoint"] = document_disjoint(args.epochs, args.lr)
        write_json("multivector", result)


def quality(epochs: int, learning_rate: float) -> dict[str, Any]:
    model, training = train(epochs, learning_rate)
    collection = index_corpus(model, "multivector-scifact")
    found = evaluate(collection)
    found.pop("queries")
    result = {
        "dataset": "scifact",
        "base": "minilm",
        "training": training,
        "build_seconds": collection.manifest.stats.get("multivector_seconds"),
        **found,
        "storage": storage(collection),
        "environment": environment(),
    }
    print(result["storage"], flush=True)
    return result


def measure_latency(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with the latency of the kept collection under this process's OpenMP wait
    policy added (the other policy's, measured before, kept)."""
    policy = os.environ.get("OMP_WAIT_POLICY", "default")
    collection = densekit.open_collection(BUILD / "multivector-scifact")
    queries = list(densekit.load_beir(dataset("scifact"), "test").queries.values())
    measured = latency(collection, queries)
    print(f"OMP_WAIT_POLICY={policy}", measured, flush=True)
    kept = {k: v for k, v in result.get("latency", {}).items() if k.startswith("OMP_WAIT_POLICY=")}
    result["latency"] = {**kept, f"OMP_WAIT_POLICY={policy}": measured}
    result.setdefault("latency_environment", {})[policy] = environment()
    return result


if __name__ == "__main__":
    main()
