"""Filtered search: latency and recall@10 against exact filtered search, by selectivity.

    .venv/bin/python benchmarks/filters.py [--size 200000] [--queries 200]

Vectors: the Gaussian mixture fitted to real MiniLM vectors that benchmarks/index.py draws from
(384 dimensions, unit length), one passage per document. Filters: a random share of the
documents (0.1%, 1%, 10%, 50%), independent of the vectors. For each of flat (exact), HNSW and
IVF-PQ with rescoring: milliseconds per query searched alone (FAISS and BLAS on one thread, as
benchmarks/index.py measures), recall@10 against exact search over only the allowed documents
(the anchor, the flat row), and the same index unfiltered; masks are read-only, as a
collection's are, so a filter's vectors are read once and reused (`first_search_ms`: the
first search with a filter, which reads them). Beside them, post-filtering (the
index's top 100 with the other documents struck out afterwards), what a filter applied after
retrieval finds. Then the cost of the filter itself: a filter on an integer field compiled to
SQLite and run over the documents' JSON metadata, once per filter and snapshot.

Writes benchmarks/results/filters.json and filters.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from _common import BUILD, QUICK, RESULTS, environment, write_json
from index import draw, fit_mixture, synthetic_shards

from densekit.corpus.document import Document
from densekit.index import FlatIndex
from densekit.index.ann import FILTERED_EXACT_ROWS, AnnIndex
from densekit.index.bench import recall_at_k, single_thread
from densekit.index.vectors import PassageGroups
from densekit.store.document_filters import DocumentFilters
from densekit.store.documents import DocumentStore, DocumentWriter

SELECTIVITIES = (0.001, 0.01, 0.1, 0.5)
SPECS = {
    "flat": "flat",
    "HNSW": "HNSW32(efConstruction=80,efSearch=64)",
    # QUICK: fewer lists for its 50,000 vectors.
    "IVF-PQ + rescore": f"IVF{128 if QUICK else 1024},PQ48(nprobe=16)+rescore*10",
}
K, POST_FILTER_DEPTH = 10, 100
BUCKETS = 1000  # the metadata field the SQLite part filters on: a bucket per document


def per_query_ms(index: FlatIndex | AnnIndex, queries: np.ndarray, allowed=None) -> dict:
    """Each query searched alone: median and mean milliseconds."""
    index.search(queries[:2], K, allowed=allowed)  # warm-up
    times = []
    for query in queries:
        started = time.perf_counter()
        index.search(query[None, :], K, allowed=allowed)
        times.append(1000 * (time.perf_counter() - started))
    return {"median_ms": round(statistics.median(times), 3), "mean_ms": round(np.mean(times), 3)}


def first_search_ms(index: FlatIndex | AnnIndex, query: np.ndarray, share: float) -> float:
    """One query with a filter the index has not seen: it reads that filter's vectors."""
    unseen = np.random.default_rng(3).random(index.documents) < share  # a new array
    unseen.setflags(write=False)
    started = time.perf_counter()
    index.search(query[None, :], K, allowed=unseen)
    return round(1000 * (time.perf_counter() - started), 3)


def post_filtered(index: FlatIndex | AnnIndex, queries: np.ndarray, allowed: np.ndarray):
    """The index's top POST_FILTER_DEPTH with the other documents struck out, top K kept."""
    rows, _ = index.search(queries, POST_FILTER_DEPTH)
    kept = np.full((len(queries), K), -1, dtype=np.int64)
    for number, found in enumerate(rows):
        found = found[(found >= 0) & allowed[np.maximum(found, 0)]][:K]
        kept[number, : len(found)] = found
    return kept


def build_indexes(vectors, groups) -> tuple[dict, dict]:
    indexes, seconds = {}, {}
    for name, spec in SPECS.items():
        started = time.perf_counter()
        indexes[name] = (
            FlatIndex.over(vectors, groups)
            if spec == "flat"
            else (AnnIndex.build(spec, vectors, groups))
        )
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"built {name} ({spec}) in {seconds[name]} s", flush=True)
    return indexes, seconds


def vector_search(size: int, query_count: int) -> dict:
    mixture = fit_mixture()
    vectors = synthetic_shards(size, mixture, BUILD / f"synthetic-pca-{size}")
    groups = PassageGroups(vectors.rows, None)
    queries = draw(mixture, query_count, np.random.default_rng(11))
    indexes, build_seconds = build_indexes(vectors, groups)
    rows: dict[str, dict] = {}
    with single_thread():
        unfiltered = {name: per_query_ms(index, queries) for name, index in indexes.items()}
        for share in SELECTIVITIES:
            allowed = np.random.default_rng(3).random(size) < share
            allowed.setflags(write=False)  # as a collection's masks are: searched again and again
            truth, _ = indexes["flat"].search(queries, K, allowed=allowed)
            exact_ms = None
            for name, index in indexes.items():
                found, _ = index.search(queries, K, allowed=allowed)
                assert np.all(allowed[found[found >= 0]]), f"{name} returned a filtered-out row"
                timing = {
                    "first_search_ms": first_search_ms(index, queries[0], share),
                    **per_query_ms(index, queries, allowed),
                }
                exact_ms = exact_ms or timing["median_ms"]
                row = {
                    "selectivity": share,
                    "allowed_documents": int(allowed.sum()),
                    "recall@10": round(recall_at_k(found, truth), 4),
                    **timing,
                    "vs_exact_filtered": round(timing["median_ms"] / exact_ms, 3),
                    "vs_unfiltered": round(timing["median_ms"] / unfiltered[name]["median_ms"], 3),
                    "post_filter_recall@10": round(
                        recall_at_k(post_filtered(index, queries, allowed), truth), 4
                    ),
                }
                rows[f"{name} @ {share:g}"] = row
                print(f"{name} @ {share:g}: {json.dumps(row)}", flush=True)
    return {
        "documents": size,
        "dimension": vectors.dimension,
        "queries": query_count,
        "specs": SPECS,
        "build_seconds": build_seconds,
        "unfiltered": unfiltered,
        "filtered_exact_rows": FILTERED_EXACT_ROWS,
        "rows": rows,
    }


def filter_cost(size: int) -> dict:
    """Seconds to turn a filter into a document mask (one SQLite scan), per selectivity."""
    path = BUILD / f"filters-documents-{size}.sqlite"
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        writer = DocumentWriter(partial)
        buckets = np.random.default_rng(5).integers(0, BUCKETS, size)
        writer.add_all(
            Document(f"d{row}", "text", metadata={"bucket": int(b), "lang": "en"})
            for row, b in enumerate(buckets)
        )
        writer.close()
        partial.rename(path)
    store = DocumentStore(path)
    timings = {}
    for share in SELECTIVITIES:
        filters = DocumentFilters(store.connection, size)  # a fresh snapshot: nothing kept
        where = f"bucket < {round(share * BUCKETS)} and lang = 'en'"
        started = time.perf_counter()
        mask = filters.mask(where)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        filters.mask(where)
        again = time.perf_counter() - started
        timings[f"{share:g}"] = {
            "filter": where,
            "matched": int(mask.sum()),
            "first_seconds": round(seconds, 3),
            "kept_seconds": round(again, 6),
        }
        print(f"mask {where}: {json.dumps(timings[f'{share:g}'])}", flush=True)
    store.close()
    return {"documents": size, "masks": timings}


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["vector_search"]["rows"]
    figure, (latency, recall) = plt.subplots(1, 2, figsize=(11, 4))
    for number, name in enumerate(SPECS):
        mine = [rows[f"{name} @ {share:g}"] for share in SELECTIVITIES]
        color = f"C{number}"
        latency.plot(
            SELECTIVITIES, [r["median_ms"] for r in mine], marker="o", color=color, label=name
        )
        recall.plot(
            SELECTIVITIES, [r["recall@10"] for r in mine], marker="o", color=color, label=name
        )
        recall.plot(
            SELECTIVITIES,
            [r["post_filter_recall@10"] for r in mine],
            marker="x",
            linestyle="--",
            color=color,
            label=f"{name}, post-filtered top {POST_FILTER_DEPTH}",
        )
    for axis in (latency, recall):
        axis.set_xscale("log")
        axis.set_xlabel("share of documents the filter allows")
        axis.grid(alpha=0.3)
    latency.set_yscale("log")
    latency.set_ylabel("ms per query (median, one thread)")
    latency.legend(fontsize=7)
    recall.set_ylabel("recall@10 vs exact filtered search")
    recall.legend(fontsize=7)
    size = results["vector_search"]["documents"]
    figure.suptitle(f"Filtered search over {size:,} vectors (384-d)")
    figure.tight_layout()
    figure.savefig(RESULTS / "filters.png", dpi=120)
    plt.close(figure)


def replot() -> None:
    """The plot again from the JSON, without measuring."""
    plot(json.loads((RESULTS / "filters.json").read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # QUICK: enough vectors that the 50% filter still searches HNSW and IVF (not exactly).
    parser.add_argument("--size", type=int, default=50_000 if QUICK else 200_000)
    parser.add_argument("--queries", type=int, default=20 if QUICK else 200)
    args = parser.parse_args()
    results = {
        "environment": environment(),
        "vector_search": vector_search(args.size, args.queries),
        "filter_cost": filter_cost(args.size),
    }
    write_json("filters", results)
    plot(results)
    print(f"wrote {Path(RESULTS / 'filters.json')}")


if __name__ == "__main__":
    main()
