"""Distributed encoding: a pool of Ray actors, each holding the model once, encoding partitions.

A partition is one embedding shard of the collection being built: this process reads the
corpus, skips the shards an earlier run finished and the passages the cache holds, sends the
rest to the workers and commits each shard as it comes back (:mod:`densekit.store.encoding_run`),
so a distributed build writes the same files as a local one and resumes either.

A worker that dies is restarted by Ray and its partition retried; a worker that cannot be
restarted is dropped and its partitions go to the others.
"""

from __future__ import annotations

import itertools
import math
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from densekit.distributed.cluster import Resources, connected, import_ray
from densekit.encode.precision import default_precision, use_precision
from densekit.errors import CollectionError, InputError
from densekit.store.build_options import BuildOptions
from densekit.store.encoding_run import EncodedTexts, encode_texts

RESTARTS = 3  # per worker; past that its partitions go to the other workers
PARTITIONS_PER_WORKER = 2  # in flight: one encoding, one queued behind it


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers to start and what each one reserves."""

    workers: int
    cpus: int  # per worker: its torch threads
    gpus: float  # per worker
    note: str | None = None  # why fewer workers than asked


def plan_workers(
    resources: Resources,
    node_cpus: list[float],
    workers: int | None = None,
    gpus_per_worker: float = 0.0,
) -> WorkerPlan:
    """Workers that fit the cluster: ``workers`` (default: one per GPU share, else one per
    core), fewer when it has not the room (said in ``note``), each with a whole share of a
    node's cores."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: give 1 or more")
    if gpus_per_worker < 0:
        raise InputError(f"--gpus-per-worker {gpus_per_worker:g}: give 0 or more")
    if gpus_per_worker > 0:
        if resources.gpus < gpus_per_worker:
            raise InputError(
                f"--gpus-per-worker {gpus_per_worker:g}, but the cluster has "
                f"{resources.gpus:g} GPUs; ask for fewer, or drop it to encode on CPUs"
            )
        room = int(resources.gpus // gpus_per_worker)
        unit = f"GPUs ({gpus_per_worker:g} per worker)"
        total = f"{resources.gpus:g}"
    else:
        room = int(sum(math.floor(cpus) for cpus in node_cpus))
        unit, total = "CPU cores", f"{resources.cpus:g}"
    if room < 1:
        raise InputError("the Ray cluster has no CPU core free for a worker")
    wanted = room if workers is None else workers
    chosen = min(wanted, room)
    note = None
    if chosen < wanted:
        note = f"{wanted} workers asked, but the cluster has {total} {unit}: using {chosen}"
    cpus = 1
    if gpus_per_worker == 0:
        # The largest whole share of cores that still places every worker on some node.
        cpus = max(1, int(resources.cpus // chosen))
        while cpus > 1 and sum(math.floor(node // cpus) for node in node_cpus) < chosen:
            cpus -= 1
    return WorkerPlan(chosen, cpus, gpus_per_worker, note)


class EncoderWorker:
    """One worker: the model loaded once, encoding the partitions it is sent."""

    def __init__(self, options: BuildOptions, threads: int, precision: str | None = None) -> None:
        import torch

        torch.set_num_threads(threads)
        use_precision(precision)  # the driver's --precision, on the worker's own device
        self.encoder = options.load_encoder()

    def fingerprint(self) -> str:
        return self.encoder.fingerprint

    def encode(self, texts: list[str]) -> EncodedTexts:
        return encode_texts(self.encoder, texts)


class RayEncoding:
    """A :class:`~densekit.store.encoding_run.PartitionEncoder` over a pool of Ray actors."""

    def __init__(self, options: BuildOptions, plan: WorkerPlan, fingerprint: str) -> None:
        ray = import_ray()
        self._ray = ray
        self.name = f"densekit-encoder-{uuid.uuid4().hex[:8]}"
        worker = ray.remote(EncoderWorker)
        self.actors: dict[int, Any] = {
            number: worker.options(
                name=f"{self.name}-{number}",
                num_cpus=plan.cpus,
                num_gpus=plan.gpus,
                max_restarts=RESTARTS,
                max_task_retries=-1,  # a partition in flight on a worker that dies is sent again
            ).remote(options, plan.cpus, default_precision())
            for number in range(plan.workers)
        }
        try:
            loaded = ray.get([actor.fingerprint.remote() for actor in self.actors.values()])
        except BaseException:
            self.close()
            raise
        if any(other != fingerprint for other in loaded):
            self.close()
            raise InputError(
                f"the Ray workers loaded model {options.model!r} with other weights or settings "
                "than this process did; install the same model on every node"
            )
        self.fingerprint = fingerprint
        self.capacity = PARTITIONS_PER_WORKER * plan.workers
        self._pending: dict[Any, tuple[int, list[str], int]] = {}  # ref: key, texts, actor
        self._load = dict.fromkeys(self.actors, 0)
        self._order = itertools.count()

    def submit(self, key: int, texts: list[str]) -> None:
        if not self.actors:
            raise CollectionError(
                "every encoding worker died; finished shards are kept: run the command again "
                "to resume"
            )
        number = min(self._load, key=lambda n: (self._load[n], n))
        self._load[number] += 1
        reference = self.actors[number].encode.remote(texts)
        self._pending[reference] = (key, texts, number)

    def finished(self, wait: bool) -> list[tuple[int, EncodedTexts]]:
        if not self._pending:
            return []
        references = list(self._pending)
        ready, _ = self._ray.wait(
            references,
            num_returns=1 if wait else len(references),
            timeout=None if wait else 0,
        )
        done = []
        for reference in ready:
            key, texts, number = self._pending.pop(reference)
            if number in self._load:  # not a worker dropped already
                self._load[number] -= 1
            try:
                done.append((key, self._ray.get(reference)))
            except self._ray.exceptions.RayActorError:
                self._drop(number)
                self.submit(key, texts)  # the worker is gone for good: another one does it
        return done

    def _drop(self, number: int) -> None:
        if self.actors.pop(number, None) is not None:
            del self._load[number]
            print(
                f"encoding worker {number} could not be restarted; going on with "
                f"{len(self.actors)}",
                file=sys.stderr,
            )

    def cancel(self) -> None:
        self.close()

    def close(self) -> None:
        for actor in self.actors.values():
            self._ray.kill(actor, no_restart=True)
        self.actors.clear()
        self._pending.clear()


def _node_cpus() -> list[float]:
    ray = import_ray()
    return [
        node["Resources"].get("CPU", 0.0)
        for node in ray.nodes()
        if node.get("Alive") and node.get("Resources")
    ]


@contextmanager
def ray_encoding(
    options: BuildOptions,
    fingerprint: str,
    address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float = 0.0,
) -> Iterator[RayEncoding]:
    """Workers encoding with ``options``'s model on the Ray cluster at ``address`` (see
    :func:`densekit.distributed.cluster.connected`), for the time of the block."""
    with connected(address) as resources:
        plan = plan_workers(resources, _node_cpus(), workers, gpus_per_worker)
        if plan.note:
            print(plan.note, file=sys.stderr)
        encoding = RayEncoding(options, plan, fingerprint)
        try:
            yield encoding
        finally:
            encoding.close()
