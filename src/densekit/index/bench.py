"""Measure index specs on a collection's own vectors: recall against exact search, queries per
second, build time, resident memory and disk bytes — the trade-off a user picks an index by."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from densekit.index.ann import AnnIndex
from densekit.index.faiss_loader import faiss_module
from densekit.index.flat import FlatIndex
from densekit.index.spec import parse_spec
from densekit.index.vectors import PassageGroups, ShardedVectors

# Enough batch-1 searches for a stable rate without making slow specs take minutes.
_SINGLE_QUERY_BUDGET_SECONDS = 2.0


@dataclass(frozen=True)
class SpecMeasurement:
    spec: str
    recall_at_k: float
    qps_single: float  # one query at a time, one thread
    qps_batched: float  # all queries in one call, all threads
    build_seconds: float
    resident_bytes: int
    disk_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_spec_list(text: str) -> list[str]:
    """``"flat;HNSW32;binary+rescore*4"`` → the specs, each checked against the grammar."""
    specs = [part.strip() for part in text.split(";") if part.strip()]
    for spec in specs:
        parse_spec(spec)
    return specs


def bench_specs(
    vectors: ShardedVectors,
    groups: PassageGroups,
    specs: Sequence[str],
    queries: np.ndarray,
    *,
    k: int = 10,
    on_result: Callable[[SpecMeasurement], object] | None = None,
    on_index: Callable[[FlatIndex | AnnIndex], object] | None = None,
    truth: np.ndarray | None = None,
) -> list[SpecMeasurement]:
    """Build each spec over ``vectors`` and measure it with ``queries``; ``on_index`` sees each
    built index before the next is built (for measurements of the caller's own). ``truth``:
    the exact top ``k`` rows per query, when the caller has computed them already."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if truth is None:
        truth = exact_top(vectors, groups, queries, k)
    results = []
    for spec in specs:
        result, index = _measure(spec, vectors, groups, queries, truth, k)
        if on_index is not None:
            on_index(index)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _measure(
    spec: str,
    vectors: ShardedVectors,
    groups: PassageGroups,
    queries: np.ndarray,
    truth: np.ndarray,
    k: int,
) -> tuple[SpecMeasurement, FlatIndex | AnnIndex]:
    parsed = parse_spec(spec)
    started = time.perf_counter()
    if parsed.is_exact:
        index: FlatIndex | AnnIndex = FlatIndex.over(vectors, groups)
        resident = disk = vectors.rows * vectors.dimension * 4
    else:
        index = AnnIndex.build(parsed, vectors, groups)
        resident = index.resident_bytes
        with tempfile.TemporaryDirectory(prefix="densekit-bench-index-") as scratch:
            disk = (Path(scratch) / index.save(Path(scratch))["file"]).stat().st_size
        if parsed.rescore is not None:
            disk += vectors.rows * vectors.dimension * 4  # the float shards it rescores from
    build_seconds = time.perf_counter() - started
    recall = recall_at_k(index.search(queries, k)[0], truth)
    with single_thread():
        qps_single = _single_query_rate(index, queries, k)
    started = time.perf_counter()
    index.search(queries, k)
    qps_batched = len(queries) / max(time.perf_counter() - started, 1e-9)
    measurement = SpecMeasurement(
        spec=str(parsed),
        recall_at_k=round(recall, 4),
        qps_single=round(qps_single, 1),
        qps_batched=round(qps_batched, 1),
        build_seconds=round(build_seconds, 3),
        resident_bytes=int(resident),
        disk_bytes=int(disk),
    )
    return measurement, index


def exact_top(
    vectors: ShardedVectors, groups: PassageGroups, queries: np.ndarray, k: int
) -> np.ndarray:
    """The exact top ``k`` document rows per query: what recall is measured against."""
    return FlatIndex.over(vectors, groups).search(queries, k)[0]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's exact top ``k`` found; padding rows (-1) count as misses."""
    return float(
        np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def _single_query_rate(index: FlatIndex | AnnIndex, queries: np.ndarray, k: int) -> float:
    done, started = 0, time.perf_counter()
    while done < len(queries):
        index.search(queries[done : done + 1], k)
        done += 1
        if time.perf_counter() - started > _SINGLE_QUERY_BUDGET_SECONDS and done >= 10:
            break
    return done / max(time.perf_counter() - started, 1e-9)


@contextmanager
def single_thread() -> Iterator[None]:
    """FAISS and BLAS on one thread, as a server handling one request per core would run."""
    faiss = faiss_module()
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # numpy's BLAS keeps its threads; FAISS is the bulk of the work
        threadpool_limits = None
    try:
        if threadpool_limits is None:
            yield
        else:
            with threadpool_limits(limits=1):
                yield
    finally:
        faiss.omp_set_num_threads(previous)


def format_table(results: Sequence[SpecMeasurement], k: int) -> str:
    header = (
        f"{'spec':<34} {'recall@' + str(k):>9} {'QPS (1 q)':>10} {'QPS (batch)':>12} "
        f"{'build s':>8} {'RAM MiB':>8} {'disk MiB':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.spec:<34} {r.recall_at_k:>9.4f} {r.qps_single:>10.1f} {r.qps_batched:>12.1f} "
            f"{r.build_seconds:>8.2f} {r.resident_bytes / 2**20:>8.1f} "
            f"{r.disk_bytes / 2**20:>9.1f}"
        )
    return "\n".join(lines)


def plot_recall_qps(
    results: Sequence[SpecMeasurement],
    k: int,
    path: Path,
    title: str,
    curves: dict[str, list[tuple[float, float]]] | None = None,
) -> bool:
    """Recall against single-query QPS, one labelled point per spec, and optional curves of
    (QPS, recall) over a spec's query-time settings; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(8, 4.8))
    for label, points in (curves or {}).items():
        qps, recall = zip(*points, strict=True)
        axes.plot(qps, recall, marker=".", linewidth=1, alpha=0.6, label=label)
    if curves:
        axes.legend(fontsize=7, loc="lower left")
    for r in results:
        axes.scatter(r.qps_single, r.recall_at_k)
        axes.annotate(
            r.spec,
            (r.qps_single, r.recall_at_k),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
    axes.set_xscale("log")
    axes.set_xlabel("queries per second (one query at a time, one thread)")
    axes.set_ylabel(f"recall@{k} against exact search")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
