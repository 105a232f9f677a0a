"""Writing to an existing collection: one writer at a time, a staged generation, and one atomic
manifest rename that publishes it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from densekit.store import layout
from densekit.store.collection import Collection
from densekit.store.durability import fsync_tree
from densekit.store.manifest import Manifest, read_manifest, write_manifest


@contextmanager
def open_for_writing(directory: Path) -> Iterator[Collection]:
    """The published collection, with every other writer locked out until the block ends."""
    read_manifest(directory)  # a missing or broken collection is reported before locking
    with layout.directory_lock(directory):
        collection = Collection(directory)
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


def publish(directory: Path, manifest: Manifest) -> None:
    """Make ``manifest``'s generation durable, then visible, then drop what nothing names."""
    fsync_tree(directory / manifest.generation)
    write_manifest(directory, manifest)
    layout.remove_stale_generations(directory, keep=manifest.generation)
    layout.remove_unnamed_adapters(directory, manifest.adapter and manifest.adapter.folder)
    _prune_shared_generations(directory, manifest)


def _prune_shared_generations(directory: Path, manifest: Manifest) -> None:
    """Earlier generations stay for the shards the manifest still shares; their other files
    (documents, BM25, index copies that later changes replaced) go, so disk use does not grow
    with every change. Readers holding them open keep them until they close."""
    for name in layout.published_generations(directory) - {manifest.generation}:
        root = directory / name
        for path in sorted(root.rglob("*"), reverse=True):  # files before their folders
            if path.is_dir():
                if not any(path.iterdir()):
                    path.rmdir()
            elif path.relative_to(directory).as_posix() not in manifest.files:
                path.unlink(missing_ok=True)
