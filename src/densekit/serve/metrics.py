"""Prometheus metrics of one server: requests, latency, errors, encoder and shard batch sizes,
and the process's own (CPU, memory, open files)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# The *_created series double the exposition and say nothing a restart time would not.
disable_created_metrics()


class ServerMetrics:
    """A registry of its own per server, so two apps in one process never share counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # process_* (CPU seconds, resident memory, open files) and python_info, as Prometheus's
        # default registry has them: a dashboard's usual panels work.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "densekit_requests",
            "HTTP requests answered, by route and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "densekit_request_seconds",
            "Time from request to response, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "densekit_errors",
            "Requests answered with a 4xx or 5xx status, by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.batch_sizes = Histogram(
            "densekit_encode_batch_size",
            "Texts per model call after micro-batching, by model.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.shard_batch_sizes = Histogram(
            "densekit_shard_batch_size",
            "Queries per search of a sharded collection's shards after micro-batching, "
            "by collection.",
            ["collection"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def observe_batch(self, model: str, size: int) -> None:
        self.batch_sizes.labels(model).observe(size)

    def observe_shard_batch(self, collection: str, size: int) -> None:
        self.shard_batch_sizes.labels(collection).observe(size)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
