"""The index family: quality on SciFact, and speed/memory/recall on 1M realistic vectors.

    .venv/bin/python benchmarks/index.py [--parts scifact,synthetic] [--size 1000000]

1. SciFact (real MiniLM vectors of the benchmark collection, 300 test queries): nDCG@10 of each
   spec and its ratio to exact search.
2. Synthetic: vectors drawn from a Gaussian mixture fitted to real MiniLM vectors (SciFact,
   Cranfield and LIMIT-small corpora: 256 k-means components, each with its own variance along
   the principal axes of the real sample, unit-normalised like the model's output), written as
   float32 shards; 1,000 queries from the same mixture. Per spec: recall@10 against exact,
   queries/s single-threaded at batch 1 and batched, build time, resident bytes and disk bytes;
   densekit's search time against calling the same FAISS index directly with the same
   parameters; and recall/QPS over query-time settings (efSearch, nprobe, rescore depth).

Writes benchmarks/results/index.json and index.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import BUILD, QUICK, RESULTS, build_or_open, dataset, environment, write_json

from densekit.evaluate.beir import load_beir
from densekit.evaluate.metrics import compute_metrics
from densekit.index import FlatIndex
from densekit.index.ann import AnnIndex
from densekit.index.bench import (
    bench_specs,
    exact_top,
    format_table,
    plot_recall_qps,
    recall_at_k,
    single_thread,
)
from densekit.index.vectors import PassageGroups, ShardedVectors

SCIFACT_SPECS = [
    "flat",
    "HNSW32",
    "IVF64,Flat(nprobe=8)",
    "IVF64,PQ48(nprobe=16)+rescore*10",
    "PQ48+rescore*10",
    "binary",
    "binary+rescore*4",
    "binary+rescore*10",
    "int8",
    "int8+rescore*4",
    "dim128:flat+rescore*4",
    "dim128:HNSW32+rescore*4",
]
SYNTHETIC_SPECS = [
    "flat",
    "HNSW32(efConstruction=80,efSearch=64)",
    "IVF4096,Flat(nprobe=16)",
    "IVF4096,PQ48(nprobe=32)+rescore*10",
    "binary+rescore*10",
    "int8+rescore*4",
]
# Query-time settings swept on the built index (no rebuild): the recall / speed curve.
SWEEPS = {
    "efSearch": [16, 32, 64, 128, 256, 512],
    "nprobe": [4, 16, 64, 256],
    "rescore": [4, 10, 25, 50, 100],
}
MIXTURE_COMPONENTS = 256
SHARD_ROWS = 131_072


def scifact(specs: list[str]) -> dict:
    collection = build_or_open("scifact")
    data = load_beir(dataset("scifact"), "test")
    query_ids = list(data.queries)
    queries = collection.encoder.encode_queries([data.queries[q] for q in query_ids])
    vectors, groups = collection.dense_vectors()
    doc_ids = collection.doc_ids
    results = {}
    for spec in specs:
        index: FlatIndex | AnnIndex
        if spec == "flat":
            index = FlatIndex.over(vectors, groups)
        else:
            index = AnnIndex.build(spec, vectors, groups)
        rows, scores = index.search(queries, 100)
        run = {
            qid: {doc_ids[r]: float(s) for r, s in zip(row, score, strict=True) if r >= 0}
            for qid, row, score in zip(query_ids, rows, scores, strict=True)
        }
        ndcg = compute_metrics(data.qrels, run, ["nDCG@10"]).aggregate["nDCG@10"]
        results[spec] = {"ndcg_at_10": round(ndcg, 4)}
        print(f"SciFact {spec}: nDCG@10 {ndcg:.4f}", flush=True)
    exact = results["flat"]["ndcg_at_10"]
    for entry in results.values():
        entry["relative_to_flat"] = round(entry["ndcg_at_10"] / exact, 4)
    return results


def fit_mixture(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Means, spreads along the principal axes, weights and those axes of a Gaussian mixture
    fitted to real MiniLM vectors. Spreads are per component along the axes of the whole
    sample, so the mixture keeps the correlated, fast-decaying spectrum real embeddings have
    (independent noise per raw dimension would make the data far higher-dimensional)."""
    import faiss

    real = []
    for name in ("scifact", "cranfield", "limit-small"):
        vectors, _ = build_or_open(name).dense_vectors()
        real.extend(vectors.blocks())
    sample = np.concatenate(real)
    kmeans = faiss.Kmeans(sample.shape[1], MIXTURE_COMPONENTS, niter=25, seed=seed)
    kmeans.train(sample)
    _, assignment = kmeans.index.search(sample, 1)
    assignment = assignment.ravel()
    axes = np.linalg.eigh(np.cov(sample, rowvar=False))[1].astype(np.float32)
    residuals = (sample - kmeans.centroids[assignment]) @ axes
    spreads = np.empty_like(kmeans.centroids)
    weights = np.bincount(assignment, minlength=MIXTURE_COMPONENTS).astype(np.float64)
    for component in range(MIXTURE_COMPONENTS):
        members = residuals[assignment == component]
        spreads[component] = members.std(axis=0) if len(members) > 1 else residuals.std(axis=0)
    print(f"mixture fitted to {len(sample)} real MiniLM vectors", flush=True)
    return kmeans.centroids, spreads, weights / weights.sum(), axes


def draw(mixture: tuple, count: int, rng: np.random.Generator) -> np.ndarray:
    means, spreads, weights, axes = mixture
    components = rng.choice(len(weights), size=count, p=weights)
    noise = rng.standard_normal((count, means.shape[1]), dtype=np.float32)
    points = means[components] + (spreads[components] * noise) @ axes.T
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def synthetic_shards(size: int, mixture: tuple, folder: Path) -> ShardedVectors:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for number, start in enumerate(range(0, size, SHARD_ROWS)):
        path = folder / f"{number:05d}.npy"
        np.save(path, draw(mixture, min(SHARD_ROWS, size - start), rng))
        paths.append(path)
    return ShardedVectors([np.load(path, mmap_mode="r") for path in paths])


def faiss_overhead(index: AnnIndex, queries: np.ndarray, k: int, repeats: int = 3) -> dict:
    """densekit's search against the same FAISS index searched directly, same parameters."""
    faiss_index = index.codes.index
    settings = {**index.index_spec.options}
    index.codes.apply_settings({n: v for n, v in settings.items() if n in ("efSearch", "nprobe")})

    def best(run) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        return min(times)

    with single_thread():
        direct_single = best(lambda: [faiss_index.search(q[None], k) for q in queries])
        ours_single = best(lambda: [index.search(q[None], k) for q in queries])
    direct_batch = best(lambda: faiss_index.search(queries, k))
    ours_batch = best(lambda: index.search(queries, k))
    return {
        "batch_1_ratio": round(ours_single / direct_single, 3),
        "batched_ratio": round(ours_batch / direct_batch, 3),
    }


def sweep_point(
    index: AnnIndex, queries: np.ndarray, truth: np.ndarray, setting: str, value: int
) -> dict:
    """Recall@10 and single-thread batch-1 QPS of ``index`` with one query-time setting."""
    recall = recall_at_k(index.search(queries, 10, **{setting: value})[0], truth)
    with single_thread():
        started = time.perf_counter()
        for query in queries:
            index.search(query[None], 10, **{setting: value})
        qps = len(queries) / (time.perf_counter() - started)
    point = {setting: value, "recall_at_10": round(recall, 4), "qps_single": round(qps, 1)}
    print(f"  {index.spec} {point}", flush=True)
    return point


def synthetic(size: int, specs: list[str]) -> dict:
    mixture = fit_mixture()
    vectors = synthetic_shards(size, mixture, BUILD / f"synthetic-pca-{size}")
    queries = draw(mixture, 1000, np.random.default_rng(11))
    groups = PassageGroups(vectors.rows, None)
    print(f"{vectors.rows} synthetic vectors written", flush=True)
    overhead: dict[str, dict] = {}
    sweeps: dict[str, list] = {}
    truth = exact_top(vectors, groups, queries, 10)

    def measure_overhead_and_sweep(index: FlatIndex | AnnIndex) -> None:
        if not isinstance(index, AnnIndex):
            return
        spec = index.index_spec
        if spec.is_faiss_factory and not spec.rescore:
            overhead[index.spec] = faiss_overhead(index, queries, 10)
            print(f"densekit / FAISS search time, {index.spec}: {overhead[index.spec]}", flush=True)
        if spec.rescore:
            setting = "rescore"
        else:
            setting = "efSearch" if spec.base.startswith("HNSW") else "nprobe"
        sweeps[index.spec] = [
            sweep_point(index, queries, truth, setting, v) for v in SWEEPS[setting]
        ]

    results = bench_specs(
        vectors,
        groups,
        specs,
        queries,
        k=10,
        on_result=lambda r: print(r, flush=True),
        on_index=measure_overhead_and_sweep,
        truth=truth,
    )
    print(format_table(results, 10))
    plot(results, sweeps, size)
    return {
        "vectors": size,
        "dimension": vectors.dimension,
        "queries": len(queries),
        "how_made": __doc__.split("2. Synthetic: ")[1].split("\n\nWrites")[0].strip(),
        "results": [r.to_dict() for r in results],
        "search_time_vs_faiss_direct": overhead,
        "query_time_sweeps": sweeps,
    }


def plot(results: list, sweeps: dict[str, list], size: int) -> None:
    curves = {
        f"{spec} over {next(iter(points[0]))}": [
            (p["qps_single"], p["recall_at_10"]) for p in points
        ]
        for spec, points in sweeps.items()
    }
    plot_recall_qps(results, 10, RESULTS / "index.png", f"{size:,} MiniLM-like vectors", curves)


def replot() -> None:
    """Redraw index.png from the last results, without measuring again."""
    from densekit.index.bench import SpecMeasurement

    synthetic_results = json.loads((RESULTS / "index.json").read_text())["synthetic"]
    results = [SpecMeasurement(**r) for r in synthetic_results["results"]]
    plot(results, synthetic_results["query_time_sweeps"], synthetic_results["vectors"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parts", default="scifact,synthetic")
    parser.add_argument("--size", type=int, default=20_000 if QUICK else 1_000_000)
    parser.add_argument("--replot", action="store_true", help="only redraw index.png")
    args = parser.parse_args()
    if args.replot:
        replot()
        return
    parts = set(args.parts.split(","))
    previous = RESULTS / "index.json"
    data = json.loads(previous.read_text()) if previous.exists() else {}
    data["environment"] = environment()
    if "scifact" in parts:
        # QUICK: the 200-document SciFact copy is too small to train PQ's 256 centroids; the
        # synthetic part still builds PQ indexes.
        specs = [spec for spec in SCIFACT_SPECS if "PQ" not in spec] if QUICK else SCIFACT_SPECS
        data["scifact_ndcg_at_10"] = scifact(specs)
    if "synthetic" in parts:
        data["synthetic"] = synthetic(args.size, SYNTHETIC_SPECS)
    print("wrote", write_json("index", data))


if __name__ == "__main__":
    main()
