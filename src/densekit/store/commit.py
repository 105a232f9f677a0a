"""Writing to an existing collection: one writer at a time, a staged generation, and one atomic
manifest rename that publishes it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from densekit.files.durability import fsync_tree
from densekit.store import layout
from densekit.store.collection import StoredCollection
from densekit.store.integrity import record_checksums
from densekit.store.leftovers import clear_leftovers
from densekit.store.manifest import Manifest, read_manifest, write_manifest


@contextmanager
def open_for_writing(directory: Path) -> Iterator[StoredCollection]:
    """The published collection, with every other writer locked out until the block ends."""
    read_manifest(directory)  # a missing or broken collection is reported before locking
    with layout.directory_lock(directory):
        collection = StoredCollection(directory)
        try:
            yield collection
        finally:
            collection.close()


@contextmanager
def staged_generation(directory: Path) -> Iterator[tuple[str, Path]]:
    """A fresh generation for one write; removed again if the write fails before publishing."""
    name = layout.new_generation_name()
    root = directory / name
    root.mkdir()
    try:
        yield name, root
    except BaseException:
        if name not in layout.published_generations(directory):
            shutil.rmtree(root, ignore_errors=True)
        raise


def publish(directory: Path, manifest: Manifest) -> Manifest:
    """Record checksums of ``manifest``'s generation, make it durable, then visible, then drop
    what the manifest no longer names (see :mod:`densekit.store.leftovers`)."""
    manifest = record_checksums(directory, manifest)
    fsync_tree(directory / manifest.generation)
    write_manifest(directory, manifest)
    clear_leftovers(directory, manifest)
    return manifest
