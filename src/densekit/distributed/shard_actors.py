"""Scatter-gather on Ray: one actor per shard holds that shard's indexes in memory.

The process that searches keeps what a search needs once (the query model, the documents for
the hits) and asks the actors for their top k (:mod:`densekit.retrieve.scatter_gather`). An
actor that dies is restarted by Ray from the shard's files (the folder must be readable from
every node); a search in flight on it is retried once, and a shard that still does not answer
fails the search with :class:`~densekit.retrieve.scatter_gather.ShardUnavailableError` (a 503
from the server), never a list silently missing that shard's documents.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from densekit.distributed.cluster import connected, import_ray
from densekit.retrieve.scatter_gather import (
    ShardSearch,
    ShardUnavailableError,
    partial_report,
    use_shards,
)
from densekit.store.collection import StoredCollection
from densekit.store.manifest import Manifest
from densekit.store.sharded import ShardedStore, StoreOpener, open_store

# The StoredCollection property that loads each retriever's index.
INDEX_OF = {
    "dense": "dense_index",
    "bm25": "lexical_index",
    "splade": "sparse_index",
    "multivector": "multivector_index",
}
ANSWER_SECONDS = 60.0  # a shard that has not answered by then (restarts included) is down
LOAD_SECONDS = 600.0  # for every actor to load its shard's indexes


class ShardActor(ShardSearch):
    """One shard's side of every search, its indexes loaded when the actor starts."""

    def __init__(self, folder: str, manifest: Manifest) -> None:
        super().__init__(StoredCollection(folder, manifest=manifest))
        for retriever in self.stored.retrievers:  # loaded now, not by the first search
            if retriever in INDEX_OF:  # not hybrid: it fuses the others
                getattr(self.stored, INDEX_OF[retriever])

    def ready(self) -> bool:
        return True


class RayShards:
    """A :class:`~densekit.retrieve.scatter_gather.ShardExecutor` over one actor per shard."""

    def __init__(self, store: ShardedStore, answer_seconds: float = ANSWER_SECONDS) -> None:
        ray = import_ray()
        self._ray = ray
        self.store = store
        self.answer_seconds = answer_seconds
        self.name = f"densekit-shard-{uuid.uuid4().hex[:8]}"
        actor = ray.remote(ShardActor)
        self.actors = [
            actor.options(
                name=f"{self.name}-{number}",
                # No core reserved: a shard actor mostly waits, its searches are short, and any
                # number of shards must fit; SPREAD puts them on different nodes.
                num_cpus=0,
                max_restarts=-1,  # restarted from the shard's files for as long as it dies
                max_task_retries=1,  # a search in flight when it died is asked again, once
                scheduling_strategy="SPREAD",
            ).remote(str(shard.directory), shard.manifest)
            for number, shard in enumerate(store.shards)
        ]
        try:
            self._answers([actor.ready.remote() for actor in self.actors], LOAD_SECONDS)
        except ShardUnavailableError as error:
            self.close()
            raise ShardUnavailableError(
                f"{error}. A shard actor opens its shard's folder at the path this process "
                "sees: every node must see the collection there (a shared filesystem)"
            ) from None
        except BaseException:
            self.close()
            raise

    def ask(self, method: str, *args: Any) -> list[Any]:
        shared = tuple(self._ray.put(arg) for arg in args)  # sent once, read by every shard
        return self.ask_each(method, [shared] * len(self.actors))

    def ask_each(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return self._answers(
            [
                getattr(actor, method).remote(*given)
                for actor, given in zip(self.actors, args, strict=True)
            ]
        )

    def _answers(self, references: list[Any], seconds: float | None = None) -> list[Any]:
        errors = self._ray.exceptions
        deadline = time.monotonic() + (seconds or self.answer_seconds)
        report = partial_report()
        if report is not None:
            report.shards = len(references)
        answers: list[Any] = []
        for number, reference in enumerate(references):
            try:
                left = max(deadline - time.monotonic(), 0.0)
                answers.append(self._ray.get(reference, timeout=left))
            except (errors.RayActorError, errors.GetTimeoutError) as error:
                if report is not None:  # the caller takes the other shards' answers
                    report.missing.add(number)
                    answers.append(None)
                    continue
                shard = self.store.shard_set.shards[number]
                reason = (
                    "did not answer in time"
                    if isinstance(error, errors.GetTimeoutError)
                    else "stopped"
                )
                raise ShardUnavailableError(
                    f"{self.store.directory}: shard {number} ({shard}) {reason}; it is "
                    "restarted from its files: try again in a moment"
                ) from None
        if report is not None and len(report.missing) == len(references):
            raise ShardUnavailableError(
                f"{self.store.directory}: no shard answered; they are restarted from their "
                "files: try again in a moment"
            )
        return answers

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor, no_restart=True)
        self.actors = []


def attach_shard_actors(store: ShardedStore) -> RayShards:
    """Search ``store`` with shard actors (Ray joined already) until it closes."""
    shards = RayShards(store)
    use_shards(store, shards)
    store.on_close(shards.close)
    return shards


def ray_opener(directory: str | Path) -> StoredCollection | ShardedStore:
    """``open_store``, with shard actors for a sharded collection (an unsharded one has one
    index, searched in this process)."""
    store = open_store(directory)
    if isinstance(store, ShardedStore):
        try:
            attach_shard_actors(store)
        except BaseException:
            store.close()
            raise
    return store


@contextmanager
def shard_actors(address: str | None = None) -> Iterator[StoreOpener]:
    """Joined to the cluster at ``address``: an opener of collections whose shards are
    searched by actors (:func:`ray_opener`)."""
    with connected(address):
        yield ray_opener
