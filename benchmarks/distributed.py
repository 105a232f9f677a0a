"""Past one machine: distributed encoding and scatter-gather search, each beside its anchor.

    .venv/bin/python benchmarks/distributed.py [--parts encoding,scatter_gather,actors,serving]

- encoding: passages/s of MiniLM over the first SciFact documents, encoded by densekit's
  single-process encoder (1 thread, and every core) and by Ray worker pools of 1 and 2 workers
  on a two-node local Ray cluster of one core per node (``ray.cluster_utils.Cluster``), so each
  worker has its own core, as on separate machines. Scaling efficiency = throughput(n) /
  (n x throughput(1)); Ray overhead at one worker = 1 - throughput(Ray, 1) / throughput(local,
  1 thread). Every pool's vectors are checked against the local ones (cosine >= 0.99999).
- scatter_gather: 1M synthetic MiniLM-like vectors (the mixture of benchmarks/index.py) searched
  exactly as one index and split into 2, 4 and 8 shards, searched in threads and merged by
  densekit's merge: latency of one query (p50, p95), QPS of 64-query batches, and memory per
  shard; the merged top 10 is checked to equal the unsharded one.
- actors: a sharded SciFact collection (4 shards, static model) searched by shard actors on the
  local cluster against the same shards in threads: the per-search cost of asking actors.
- serving: `densekit serve --ray` on that collection's shard actors, 16 clients sending dense
  searches: concurrent requests' shard searches micro-batched (the default) against each
  request asking the shards alone (`--no-batching`, which also encodes each query alone: with
  the static model that costs ~0.1 ms, so the difference is the shard searches): QPS, latency,
  queries per shard search, and the rankings of both compared.
- projection (always): a 1-billion-passage layout computed from these figures and the 1M-vector
  shard measured by benchmarks/index.py (docs/scale.md).

Writes benchmarks/results/distributed.json and distributed.png.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _common import BUILD, QUICK, RESULTS, dataset, environment, write_json

from densekit.index.flat import FlatIndex
from densekit.retrieve.scatter_gather import Found, Shards, merge
from densekit.store import BuildOptions
from densekit.store.encoding_run import encode_passages

ENCODE_DOCUMENTS = 60 if QUICK else 2000
PARTITION_ROWS = 15 if QUICK else 100
POOLS = [1, 2]  # workers; one core each
SYNTHETIC_VECTORS = 20_000 if QUICK else 1_000_000
SHARD_COUNTS = [1, 2, 4, 8]
SINGLE_QUERIES = 30 if QUICK else 200
BATCH, BATCHES = 64, (2 if QUICK else 8)
SERVE_CLIENTS, SERVE_REQUESTS = 16, (5 if QUICK else 40)
K = 10


@contextlib.contextmanager
def local_cluster(nodes: int) -> Iterator[str]:
    """A Ray cluster of ``nodes`` one-core nodes on this machine, joined by this process."""
    import ray
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": 256 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(**node)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="densekit", log_to_driver=False)
    try:
        yield cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()


# --- encoding ------------------------------------------------------------------------------


def scifact_passages(count: int) -> list[tuple[str, str]]:
    with (dataset("scifact") / "corpus.jsonl").open(encoding="utf-8") as corpus:
        rows = [json.loads(line) for line in itertools.islice(corpus, count)]
    return [(row["_id"], f"{row.get('title', '')}\n{row['text']}".strip()) for row in rows]


def timed_encoding(passages: list, encoder: Any, remote: Any = None) -> tuple[float, np.ndarray]:
    with tempfile.TemporaryDirectory(dir=BUILD) as folder:
        started = time.perf_counter()
        report, paths = encode_passages(
            passages,
            Path(folder),
            encoder,
            rows_per_shard=PARTITION_ROWS,
            progress=False,
            remote=remote,
        )
        seconds = time.perf_counter() - started
        vectors = np.concatenate([np.load(path) for path in paths])
    assert report.encoded_passages == len(passages)
    return seconds, vectors


def encoding() -> dict[str, Any]:
    import torch

    from densekit.distributed import ray_encoding

    passages = scifact_passages(ENCODE_DOCUMENTS)
    options = BuildOptions(model="minilm", progress=False, cache_dir=None)
    encoder = options.load_encoder()
    encoder.encode_documents([text for _, text in passages[:16]])  # warm: first-call costs
    runs: dict[str, dict[str, Any]] = {}
    threads = torch.get_num_threads()
    reference = None
    for label, count in (("local_1_thread", 1), (f"local_{threads}_threads", threads)):
        torch.set_num_threads(count)
        seconds, vectors = timed_encoding(passages, encoder)
        reference = vectors if reference is None else reference
        runs[label] = {"threads": count, "seconds": round(seconds, 2)}
        print(f"encoding {label}: {len(passages) / seconds:.1f} passages/s", flush=True)
    torch.set_num_threads(threads)
    with local_cluster(nodes=max(POOLS)) as address:
        for workers in POOLS:
            with ray_encoding(options, encoder.fingerprint, address, workers) as remote:
                seconds, vectors = timed_encoding(passages, encoder, remote)
            cosine = float(np.sum(vectors * reference, axis=1).min())
            assert cosine >= 0.99999, f"{workers} workers: cosine {cosine}"
            runs[f"ray_{workers}_workers"] = {
                "workers": workers,
                "threads_per_worker": 1,
                "seconds": round(seconds, 2),
                "min_cosine_to_local": round(cosine, 7),
            }
            print(f"encoding ray {workers} workers: {len(passages) / seconds:.1f} passages/s")
    for run in runs.values():
        run["passages_per_second"] = round(len(passages) / run["seconds"], 2)
    one = runs["ray_1_workers"]["passages_per_second"]
    return {
        "model": "minilm",
        "passages": len(passages),
        "partition_rows": PARTITION_ROWS,
        "cluster": f"{max(POOLS)} local Ray nodes of 1 CPU each",
        "runs": runs,
        "scaling_efficiency": {
            str(w): round(runs[f"ray_{w}_workers"]["passages_per_second"] / (w * one), 3)
            for w in POOLS
        },
        "ray_overhead_at_1_worker": round(
            1 - one / runs["local_1_thread"]["passages_per_second"], 3
        ),
    }


# --- scatter-gather --------------------------------------------------------------------------


class SyntheticShard:
    """One shard's side of a dense search (as densekit.retrieve.scatter_gather.ShardSearch's),
    over rows n, n+N, n+2N, ... of the whole (the global row = local row x N + n)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.index = FlatIndex([vectors])

    def dense(self, queries: np.ndarray, k: int, params: dict[str, int]) -> Found:
        rows, scores = self.index.search(queries, k, **params)
        return list(zip(rows, scores, strict=True))


def latencies(search: Callable[[np.ndarray], object], queries: np.ndarray) -> dict[str, float]:
    search(queries[:1])  # warm
    times = []
    for row in range(SINGLE_QUERIES):
        started = time.perf_counter()
        search(queries[row : row + 1])
        times.append(time.perf_counter() - started)
    batched = queries[: BATCH * BATCHES]
    started = time.perf_counter()
    for start in range(0, len(batched), BATCH):
        search(batched[start : start + BATCH])
    return {
        "p50_ms": round(1000 * statistics.median(times), 2),
        "p95_ms": round(1000 * float(np.percentile(times, 95)), 2),
        "qps_single": round(1 / statistics.mean(times), 1),
        "qps_batched": round(len(batched) / (time.perf_counter() - started), 1),
    }


def scatter_gather() -> dict[str, Any]:
    from index import draw, fit_mixture

    mixture = fit_mixture()
    rng = np.random.default_rng(7)
    vectors = np.concatenate(
        [draw(mixture, min(100_000, SYNTHETIC_VECTORS - s), rng)
         for s in range(0, SYNTHETIC_VECTORS, 100_000)]
    )  # fmt: skip
    queries = draw(mixture, max(SINGLE_QUERIES, BATCH * BATCHES), np.random.default_rng(11))
    whole = FlatIndex([vectors])
    expected_rows, _ = whole.search(queries[:BATCH], K)
    results: dict[str, Any] = {}
    for count in SHARD_COUNTS:
        if count == 1:
            label, search = "unsharded", lambda q: whole.search(q, K)
            per_shard = vectors.nbytes
        else:
            shards = Shards([SyntheticShard(np.ascontiguousarray(vectors[n::count]))
                             for n in range(count)])  # fmt: skip

            def search(q: np.ndarray, shards: Shards = shards) -> list:
                return merge(shards.ask("dense", q, K, {}), K)

            label = f"{count}_shards"
            merged = np.array([rows for rows, _ in search(queries[:BATCH])])
            assert np.array_equal(merged, expected_rows), f"{count} shards: another top {K}"
            per_shard = max(s.index.shards[0].nbytes for s in shards.searches)
        results[label] = {"shards": count, "memory_per_shard_bytes": int(per_shard)}
        results[label].update(latencies(search, queries))
        print(f"scatter-gather {label}: {results[label]}", flush=True)
    base = results["unsharded"]
    for entry in results.values():
        entry["p50_vs_unsharded"] = round(entry["p50_ms"] / base["p50_ms"], 3)
        entry["qps_batched_vs_unsharded"] = round(entry["qps_batched"] / base["qps_batched"], 3)
    return {
        "vectors": SYNTHETIC_VECTORS,
        "dimension": int(vectors.shape[1]),
        "k": K,
        "how_made": "benchmarks/index.py's mixture fitted to real MiniLM vectors",
        "results": results,
    }


# --- shard actors ---------------------------------------------------------------------------


def scifact_queries() -> list[str]:
    return [json.loads(line)["text"] for line in (dataset("scifact") / "queries.jsonl").open()]


def static_scifact_shards() -> Path:
    """SciFact in 4 shards with the static model, built afresh."""
    from densekit.store.sharded_build import build_sharded

    folder = BUILD / "distributed-scifact-static-4"
    options = BuildOptions(model="static", retriever="hybrid", progress=False, cache_dir=None)
    corpus = dataset("scifact") / "corpus.jsonl"
    build_sharded(corpus, folder, options, shards=4, overwrite=True).close()
    return folder


def actors() -> dict[str, Any]:
    from densekit.distributed.shard_actors import ray_opener
    from densekit.retrieve import Collection, open_collection

    queries = scifact_queries()[:SINGLE_QUERIES]
    folder = static_scifact_shards()
    measured: dict[str, Any] = {}
    with open_collection(folder) as threaded, local_cluster(nodes=2):
        on_actors = Collection(ray_opener(folder))
        for retriever in ("dense", "bm25"):
            for label, collection in (("threads", threaded), ("actors", on_actors)):
                searcher = collection.searcher(retriever)
                searcher.search(queries[:2], K)  # warm
                times = []
                for query in queries:
                    started = time.perf_counter()
                    searcher.search([query], K)
                    times.append(time.perf_counter() - started)
                measured[f"{retriever}_{label}_p50_ms"] = round(1000 * statistics.median(times), 2)
            ratio = measured[f"{retriever}_actors_p50_ms"] / measured[f"{retriever}_threads_p50_ms"]
            measured[f"{retriever}_actors_vs_threads"] = round(ratio, 2)
            print(f"{retriever}: actors/threads p50 {ratio:.2f}", flush=True)
        on_actors.close()
    return {"collection": "SciFact (5,183 docs), static model, 4 shards", **measured}


def serving() -> dict[str, Any]:
    import asyncio

    from serve import batch_sizes, client_load, same_rankings
    from serve_process import running_server

    queries, folder = scifact_queries(), static_scifact_shards()
    rows: dict[str, dict[str, Any]] = {}
    with local_cluster(nodes=2) as address:
        for label, flags in (("batched", ()), ("alone", ("--no-batching",))):
            with running_server(folder, "--ray", address, *flags) as url:
                rows[label] = asyncio.run(client_load(url, queries, SERVE_CLIENTS, SERVE_REQUESTS))
                rows[label].update(batch_sizes(url, "densekit_shard_batch_size"))
            print(label, {k: v for k, v in rows[label].items() if k != "_rankings"}, flush=True)
    compared = same_rankings(rows["batched"], rows["alone"])
    for row in rows.values():
        row.pop("_rankings")
        row["queries_per_shard_search"] = row.pop("mean_batch") or 1.0  # alone: not counted
    return {
        "collection": "SciFact (5,183 docs), static model, 4 shard actors on 2 one-core nodes",
        "clients": SERVE_CLIENTS,
        **rows,
        "batched_vs_alone": compared,
    }


# --- on paper: a billion passages ----------------------------------------------------------

PASSAGES = 1_000_000_000
SHARD_PASSAGES = 1_000_000  # the shard benchmarks/index.py measures
NODE_CORES, SHARDS_PER_NODE, REPLICAS = 32, 64, 2
LAYOUT_SPEC = "IVF4096,PQ48(nprobe=32)+rescore*10"  # codes in RAM, full vectors on disk


def projection(data: dict[str, Any]) -> dict[str, Any]:
    """A 1-billion-passage collection laid out from measured per-shard figures: the 1M-vector
    shard of benchmarks/index.py (its memory, disk and query time on this machine, in core
    time) and this script's merge and actor costs. Assumes query work spreads over a node's
    cores and shards (no SIMD or memory-bandwidth gains or losses beyond this machine's)."""
    measured = RESULTS / "index.json"
    if not measured.exists():
        raise SystemExit(
            f"{measured} is missing: run benchmarks/index.py first (make benchmarks does)"
        )
    index = json.loads(measured.read_text())
    spec = next(r for r in index["synthetic"]["results"] if r["spec"] == LAYOUT_SPEC)
    cores_here = index["environment"]["cpu_threads"]  # the threads its searches used
    shards = PASSAGES // SHARD_PASSAGES
    nodes = -(-shards // SHARDS_PER_NODE) * REPLICAS
    # Core-milliseconds one shard spends per query, alone and in 64-query batches.
    single_core_ms = 1000 * cores_here / spec["qps_single"]
    batched_core_ms = 1000 * cores_here / spec["qps_batched"]
    node_ms = SHARDS_PER_NODE * single_core_ms / NODE_CORES  # one query, a node's shards at once
    gather = data.get("actors", {})
    actor_ms = gather.get("dense_actors_p50_ms", 0.0) - gather.get("dense_threads_p50_ms", 0.0)
    return {
        "assumptions": {
            "passages": PASSAGES,
            "passages_per_shard": SHARD_PASSAGES,
            "index": LAYOUT_SPEC,
            "node_cores": NODE_CORES,
            "shards_per_node": SHARDS_PER_NODE,
            "replicas": REPLICAS,
            "measured_on_cores": cores_here,
            "measured_in": "benchmarks/results/index.json (synthetic, 1M vectors)",
        },
        "shards": shards,
        "nodes": nodes,
        "per_node_ram_gb": round(SHARDS_PER_NODE * spec["resident_bytes"] / 1e9, 1),
        "per_node_disk_gb": round(SHARDS_PER_NODE * spec["disk_bytes"] / 1e9, 1),
        "recall_at_10_of_the_spec": spec["recall_at_k"],
        "shard_core_ms_per_query": round(single_core_ms, 2),
        "shard_core_ms_per_query_batched": round(batched_core_ms, 2),
        "latency_ms_per_query_one_node": round(node_ms, 1),
        "ray_round_trip_ms": round(actor_ms, 2),
        "qps_per_replica_single": round(1000 * NODE_CORES / (SHARDS_PER_NODE * single_core_ms)),
        "qps_per_replica_batched": round(1000 * NODE_CORES / (SHARDS_PER_NODE * batched_core_ms)),
        "qps_total_batched": round(
            REPLICAS * 1000 * NODE_CORES / (SHARDS_PER_NODE * batched_core_ms)
        ),
    }


def plot(data: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [part for part in ("encoding", "scatter_gather") if part in data]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for axis, part in zip(axes[0], panels, strict=True):
        if part == "encoding":
            runs = data["encoding"]["runs"]
            labels = list(runs)
            axis.bar(labels, [runs[r]["passages_per_second"] for r in labels], color="tab:blue")
            axis.set_ylabel("passages / s (MiniLM)")
            axis.set_title("encoding: single process vs Ray workers")
            axis.tick_params(axis="x", rotation=20)
        else:
            rows = data["scatter_gather"]["results"].values()
            counts = [r["shards"] for r in rows]
            axis.plot(counts, [r["p50_ms"] for r in rows], "o-", label="p50 latency, 1 query")
            axis.set_xscale("log", base=2)
            axis.set_xlabel("shards")
            axis.set_ylabel("ms")
            twin = axis.twinx()
            twin.plot(counts, [r["qps_batched"] for r in rows], "s--", color="tab:orange",
                      label="QPS, 64-query batches")  # fmt: skip
            twin.set_ylabel("queries / s")
            axis.set_title(f"scatter-gather, {data['scatter_gather']['vectors']:,} vectors")
            axis.legend(loc="upper left")
            twin.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(RESULTS / "distributed.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="encoding,scatter_gather,actors,serving")
    args = parser.parse_args()
    parts = {
        "encoding": encoding,
        "scatter_gather": scatter_gather,
        "actors": actors,
        "serving": serving,
    }
    BUILD.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "distributed.json"
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for name in filter(None, args.parts.split(",")):
        data[name] = parts[name]()
        data[name]["environment"] = environment()
        write_json("distributed", data)
    data["projection"] = projection(data)
    write_json("distributed", data)
    plot(data)


if __name__ == "__main__":
    main()
