"""Adapting frozen embeddings: residual adapters and the lexical bridge on SciFact, and the
fine-grained keyword and span test sets where dense retrieval is weakest.

    .venv/bin/python benchmarks/adapt.py [--queries 500]

Everything runs on a scratch copy of the SciFact MiniLM collection (hybrid: dense + BM25); the
model never changes, only the learned maps stored in the collection (`densekit adapt`).

1. SciFact test nDCG@10 and R@100, dense retrieval: frozen MiniLM vectors, then each adapter
   trained on SciFact train (residual low-rank / key-value / both sides; lexical bridge SLR /
   LLR), with training time. Also on the test queries none of whose positives is judged in
   train, where a map cannot simply learn which documents get cited.
2. Keyword and span-16/32/64 test sets built from the SciFact corpus (`densekit make-queries`,
   seed 0): R@10 and nDCG@10 for bm25, dense, dense + lexsem and hybrid. The bridge for them
   is trained on keyword and span queries made the same way from other documents (none of the
   test sets' documents), so it learns the task, not the answers. Lexsem vs dense: a paired
   t-test and a paired randomisation test on per-query R@10.

3. The external-encoder path: a `densekit serve` process on loopback serves MiniLM on its
   OpenAI-compatible /v1/embeddings, and a collection is built and searched through it
   (`--model openai:minilm@URL`): encoding throughput against local MiniLM on the same 1,000
   documents in the same run, and SciFact test nDCG@10 of the remote-built collection.

Writes benchmarks/results/adapt.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from _common import BUILD, build_or_open, dataset, environment, paired_tests, write_json

import densekit
from densekit.adapt.on_collection import AdaptOptions, adapt_collection
from densekit.corpus import read_corpus
from densekit.encode.adapters.lexsem import LexSemSpec
from densekit.encode.adapters.residual import AdapterSpec
from densekit.evaluate.beir import BeirDataset, load_beir
from densekit.evaluate.query_sets import QuerySetSpec, make_queries
from densekit.store.adapters import detach_adapter

METRICS = ["nDCG@10", "R@10", "R@100"]
SCIFACT_ADAPTERS = {
    "residual low-rank 64 (queries)": AdaptOptions(kind="residual"),
    "residual key-value 64 (queries)": AdaptOptions(
        kind="residual", residual=AdapterSpec(form="key-value")
    ),
    "residual low-rank 64 (both sides)": AdaptOptions(
        kind="residual", residual=AdapterSpec(sides="both")
    ),
    "lexsem slr": AdaptOptions(kind="lexsem", lexsem=LexSemSpec("slr")),
    "lexsem llr": AdaptOptions(kind="lexsem", lexsem=LexSemSpec("llr")),
}
FINE_GRAINED = {
    "keyword": QuerySetSpec(task="keyword"),
    "span-16": QuerySetSpec(task="span", span_tokens=16),
    "span-32": QuerySetSpec(task="span", span_tokens=32),
    "span-64": QuerySetSpec(task="span", span_tokens=64),
}


def scratch_collection() -> Path:
    target = BUILD / "adapt-scifact"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(build_or_open("scifact").directory, target)
    return target


def scores(data: Path | BeirDataset, collection: Path, retriever: str) -> dict:
    with densekit.open_collection(collection) as opened:
        report = densekit.evaluate(data, collection=opened, retriever=retriever, metrics=METRICS)
    return {
        "metrics": {k: round(v, 4) for k, v in report.metrics.items()},
        "per_query": report.per_query,
    }


def unseen_subset(name: str = "scifact") -> BeirDataset:
    """SciFact test queries none of whose positives is a positive of any train query."""
    train = load_beir(dataset(name), "train")
    test = load_beir(dataset(name), "test")
    seen = {doc for judged in train.qrels.values() for doc, grade in judged.items() if grade > 0}
    keep = {
        q: judged
        for q, judged in test.qrels.items()
        if not any(doc in seen for doc, grade in judged.items() if grade > 0)
    }
    return BeirDataset(
        root=test.root,
        split="test-unseen",
        corpus_path=test.corpus_path,
        queries={q: test.queries[q] for q in keep},
        qrels=keep,
    )


def scifact_adapters(collection: Path) -> dict:
    test, unseen = dataset("scifact"), unseen_subset()
    rows = {}
    for label, options in {"frozen": None, **SCIFACT_ADAPTERS}.items():
        training = {}
        if options is not None:
            training = adapt_collection(dataset("scifact"), collection, options)
        row = {
            "test": scores(test, collection, "dense")["metrics"],
            "test_unseen_positives": scores(unseen, collection, "dense")["metrics"],
        }
        if training:
            row["train_seconds"] = training["seconds"]
            row["train_pairs"] = training["pairs"]
        rows[label] = row
        print(label, json.dumps(row), flush=True)
        detach_adapter(collection)
    return {"unseen_queries": len(unseen.queries), "rows": rows}


def fine_grained_sets(queries: int) -> tuple[dict[str, Path], Path]:
    """The test sets (seed 0), and a training set made from every other document."""
    corpus = dataset("scifact") / "corpus.jsonl"
    root = BUILD / "adapt-query-sets"
    shutil.rmtree(root, ignore_errors=True)
    tests = {}
    for name, spec in FINE_GRAINED.items():
        spec = QuerySetSpec(**{**spec.__dict__, "n": queries})
        make_queries(corpus, root / name, spec)
        tests[name] = root / name
    used = {
        doc
        for folder in tests.values()
        for judged in load_beir(folder, "test").qrels.values()
        for doc in judged
    }
    rest = root / "train-corpus.jsonl"
    with rest.open("w", encoding="utf-8") as out:
        for document in read_corpus(corpus):
            if document.id not in used:
                record = {"_id": document.id, "title": document.title, "text": document.text}
                out.write(json.dumps(record) + "\n")
    training = root / "train"
    parts = []
    for name, spec in FINE_GRAINED.items():
        part = root / f"train-{name}"
        make_queries(rest, part, QuerySetSpec(**{**spec.__dict__, "n": queries, "seed": 1}))
        parts.append((name, part))
    _merge(parts, training)
    return tests, training


def _merge(parts: list[tuple[str, Path]], out: Path) -> None:
    """One BEIR folder with every part's queries (ids prefixed by the part's name)."""
    (out / "qrels").mkdir(parents=True)
    queries, qrels = [], ["query-id\tcorpus-id\tscore"]
    for name, part in parts:
        data = load_beir(part, "test")
        for query_id, text in data.queries.items():
            queries.append(json.dumps({"_id": f"{name}/{query_id}", "text": text}))
            qrels += [f"{name}/{query_id}\t{doc}\t1" for doc in data.qrels[query_id]]
    shutil.copy(parts[0][1] / "corpus.jsonl", out / "corpus.jsonl")
    (out / "queries.jsonl").write_text("\n".join(queries) + "\n", encoding="utf-8")
    (out / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")


def fine_grained(collection: Path, queries: int) -> dict:
    tests, training = fine_grained_sets(queries)
    started = time.perf_counter()
    options = AdaptOptions(kind="lexsem", lexsem=LexSemSpec("slr"), split="test")
    trained = adapt_collection(training, collection, options)
    table: dict[str, dict] = {name: {} for name in tests}
    per_query: dict[str, dict[str, dict]] = {name: {} for name in tests}
    for name, folder in tests.items():
        for label, retriever in (("dense + lexsem", "dense"),):
            result = scores(folder, collection, retriever)
            table[name][label], per_query[name][label] = result["metrics"], result["per_query"]
    detach_adapter(collection)
    for name, folder in tests.items():
        for label, retriever in (("bm25", "bm25"), ("dense", "dense"), ("hybrid", "hybrid")):
            result = scores(folder, collection, retriever)
            table[name][label], per_query[name][label] = result["metrics"], result["per_query"]
        print(name, json.dumps(table[name]), flush=True)
    significance = {
        name: paired_tests(per_query[name]["dense"], per_query[name]["dense + lexsem"], "R@10")
        for name in tests
    }
    return {
        "queries_per_set": queries,
        "lexsem_training": {
            "pairs": trained["pairs"],
            "seconds": trained["seconds"],
            "all_seconds_with_idf": round(time.perf_counter() - started, 1),
        },
        "results": table,
        "lexsem_vs_dense": significance,
    }


def external_encoder(documents: int = 1000) -> dict:
    from serve import running_server

    corpus = dataset("scifact") / "corpus.jsonl"
    subset = BUILD / "adapt-external-subset.jsonl"
    with corpus.open(encoding="utf-8") as source:
        subset.write_text("".join(next(source) for _ in range(documents)), encoding="utf-8")
    rows = {}
    with running_server(build_or_open("scifact").directory) as url:
        remote = f"openai:minilm@{url}/v1"
        for label, model, source in (
            ("local", "minilm", subset),
            ("endpoint", remote, subset),
            ("endpoint, whole corpus", remote, corpus),
        ):
            out = BUILD / f"adapt-external-{label.split(',')[0]}-{source.stem}"
            options = densekit.BuildOptions(
                model=model, retriever="dense", cache_dir=None, progress=False
            )
            started = time.perf_counter()
            built = densekit.build_collection(source, out, options, overwrite=True)
            seconds = time.perf_counter() - started
            rows[label] = {
                "documents": len(built),
                "build_seconds": round(seconds, 2),
                "documents_per_second": round(len(built) / seconds, 1),
            }
            if source == corpus:
                rows[label]["scifact_test"] = scores(dataset("scifact"), out, "dense")["metrics"]
            built.close()
            print(label, json.dumps(rows[label]), flush=True)
    local, endpoint = rows["local"], rows["endpoint"]
    return {
        "server": "densekit serve (MiniLM, micro-batching on) on loopback, same two cores",
        "rows": rows,
        "endpoint_vs_local_throughput": round(
            endpoint["documents_per_second"] / local["documents_per_second"], 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=500, help="queries per fine-grained set")
    args = parser.parse_args()
    collection = scratch_collection()
    results = {"environment": environment(), "collection": "SciFact (5,183 docs), minilm"}
    results["scifact"] = scifact_adapters(collection)
    write_json("adapt", results)
    results["fine_grained"] = fine_grained(collection, args.queries)
    write_json("adapt", results)
    results["external_encoder"] = external_encoder()
    write_json("adapt", results)
    print("wrote benchmarks/results/adapt.json")


if __name__ == "__main__":
    main()
