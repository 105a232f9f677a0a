"""The collections a server serves: names, snapshots for readers, one writer at a time.

A reader takes the collection's current snapshot (an opened :class:`Collection`, which keeps
answering from the generation it opened) and holds it for its whole request. A writer commits
through :func:`update_collection` (one atomic manifest rename), opens the new generation and
swaps it in; readers never wait for the writer, and a snapshot is closed only once the last
reader using it is done.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from densekit.corpus.document import Document
from densekit.errors import CollectionError, DensekitError, InputError
from densekit.retrieve import Collection
from densekit.serve.models import ModelPool
from densekit.serve.shard_batching import ShardBatching
from densekit.store import ChangeReport, update_collection
from densekit.store.layout import SHARDS_FILE
from densekit.store.manifest import MANIFEST_NAME
from densekit.store.sharded import ShardedStore, StoreOpener, open_store

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_NAME = re.compile(NAME_PATTERN)


class UnknownCollectionError(InputError):
    """A request named a collection the server does not serve."""


class ShuttingDownError(DensekitError):
    """The server is stopping: its collections are closed."""


class _Snapshot:
    """An opened generation and how many requests are reading it."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.readers = 0
        self.retired = False

    def close_if_unused(self) -> None:
        if self.retired and self.readers == 0:
            self.collection.close()


class ServedCollection:
    """One served collection directory."""

    def __init__(
        self,
        name: str,
        directory: Path,
        models: ModelPool,
        opener: StoreOpener = open_store,
        shard_batching: ShardBatching | None = None,
    ) -> None:
        self.name = name
        self.directory = directory
        self._models = models
        self._opener = opener
        self._shard_batching = shard_batching or ShardBatching(max_batch=1)
        self._lock = threading.Lock()  # guards the snapshot swap and reader counts
        self._write_lock = threading.Lock()  # one change at a time
        self._closed = False
        self._current = _Snapshot(self._open())
        self._seen = self._manifest_version()

    def _open(self) -> Collection:
        stored = self._opener(self.directory)
        if isinstance(stored, ShardedStore):  # concurrent requests' queries search together
            self._shard_batching.attach(stored, self.name)
        info = stored.manifest.encoder
        # A collection of vectors made elsewhere has no model: BM25 works, dense search says so.
        if info is None or info.backend == "precomputed":
            return Collection(stored)
        return Collection(stored, encoder=self._models.for_collection(stored))

    def _manifest_version(self) -> int:
        for name in (SHARDS_FILE, MANIFEST_NAME):
            try:
                return (self.directory / name).stat().st_mtime_ns
            except OSError:
                continue
        return 0

    def _refresh_if_changed(self) -> None:
        """Pick up a change published by another writer (`densekit add` beside the server):
        one stat per request; the reopening reader's request pays for it, no one waits."""
        if self._manifest_version() == self._seen or not self._write_lock.acquire(blocking=False):
            return
        try:
            version = self._manifest_version()
            if version != self._seen:
                self._swap(self._open())
                self._seen = version
        finally:
            self._write_lock.release()

    def _swap(self, collection: Collection) -> None:
        fresh = _Snapshot(collection)
        with self._lock:
            old, self._current = self._current, fresh
            old.retired = True
            old.close_if_unused()

    @contextmanager
    def snapshot(self) -> Iterator[Collection]:
        """The current generation, kept open for as long as the caller reads it."""
        if self._closed:
            raise ShuttingDownError("the server is shutting down; retry on another instance")
        with self._named_errors():
            self._refresh_if_changed()
        with self._lock:
            snapshot = self._current
            snapshot.readers += 1
        try:
            with self._named_errors():
                yield snapshot.collection
        finally:
            with self._lock:
                snapshot.readers -= 1
                snapshot.close_if_unused()

    @contextmanager
    def _named_errors(self) -> Iterator[None]:
        """Errors name the collection as clients know it, not by the server's file paths."""
        try:
            yield
        except DensekitError as exc:
            renamed = copy.copy(exc)
            renamed.args = (str(exc).replace(str(self.directory), f"collection {self.name!r}"),)
            raise renamed from None

    def change(
        self,
        *,
        add: Sequence[Document] = (),
        update: Sequence[Document] = (),
        upsert: Sequence[Document] = (),
        delete: Sequence[str] = (),
    ) -> ChangeReport:
        """Commit one change atomically and let new requests read the new generation."""
        with self._write_lock:
            encoder = None
            with self.snapshot() as collection:
                if collection.manifest.encoder is not None:
                    encoder = collection.model
            with self._named_errors():
                report = update_collection(
                    self.directory,
                    add=add,
                    update=update,
                    upsert=upsert,
                    delete=delete,
                    encoder=encoder,
                    cache=False,
                )
                self._swap(self._open())
                self._seen = self._manifest_version()
        return report

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._current.retired = True
            self._current.close_if_unused()


def check_directories(directories: Mapping[str, str | Path]) -> None:
    """Refuse unusable names and missing folders: cheap, before a port is taken or a model
    loaded."""
    for name, directory in directories.items():
        if not _NAME.match(name):
            raise InputError(
                f"{name!r} is not a usable collection name: use letters, digits, '.', '_' "
                "and '-' (name it with NAME=DIR)"
            )
        if not Path(directory).is_dir():
            raise InputError(f"{directory}: no such collection directory")


class Catalog:
    """Served collections by name; a name can only ever reach a directory given at start."""

    def __init__(
        self,
        directories: Mapping[str, str | Path],
        models: ModelPool,
        opener: StoreOpener = open_store,
        shard_batching: ShardBatching | None = None,
    ) -> None:
        """``opener`` opens each directory's store (:func:`densekit.store.sharded.open_store`,
        or one that searches shards on a cluster); ``shard_batching``: how concurrent searches
        of a sharded collection are sent to its shards together (default: each alone)."""
        if not directories:
            raise InputError("give at least one collection directory to serve")
        self._served: dict[str, ServedCollection] = {}
        check_directories(directories)
        for name, directory in directories.items():
            try:
                self._served[name] = ServedCollection(
                    name, Path(directory), models, opener, shard_batching
                )
            except CollectionError as exc:
                raise CollectionError(f"collection {name!r}: {exc}") from None

    @property
    def names(self) -> list[str]:
        return sorted(self._served)

    def __getitem__(self, name: str) -> ServedCollection:
        served = self._served.get(name)
        if served is None:
            raise UnknownCollectionError(
                f"no collection named {name!r}; this server has: {', '.join(self.names)}"
            )
        return served

    def describe(self, name: str) -> dict[str, Any]:
        with self[name].snapshot() as collection:
            info = collection.info()
        # The server's file system is none of the client's business: no folders, no paths.
        info.pop("directory", None)
        if info.get("source"):
            info["source"] = Path(str(info["source"])).name
        if info.get("model"):
            info["model"].pop("location", None)
        if info.get("fusion_tuning"):
            info["fusion_tuning"].pop("dataset_path", None)
        return {"name": name, **info}

    def close(self) -> None:
        for served in self._served.values():
            served.close()


def collection_names(directories: Sequence[str]) -> dict[str, str]:
    """``NAME=DIR`` or ``DIR`` (named by its folder) arguments as names -> directories."""
    named: dict[str, str] = {}
    for argument in directories:
        name, sep, directory = argument.partition("=")
        if not sep:
            directory, name = argument, Path(argument.rstrip("/")).name
        if name in named:
            raise InputError(
                f"two collections would be named {name!r} ({named[name]} and {directory}); "
                "name them apart with NAME=DIR"
            )
        named[name] = directory
    return named
