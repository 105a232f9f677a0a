"""The collection directory: manifest, documents, embedding shards and indexes."""

from densekit.store.builder import BuildOptions, build_collection
from densekit.store.changes import ChangeReport, update_collection
from densekit.store.collection import Collection, open_collection
from densekit.store.compaction import CompactionReport, compact_collection
from densekit.store.manifest import Manifest

__all__ = [
    "BuildOptions",
    "ChangeReport",
    "Collection",
    "CompactionReport",
    "Manifest",
    "build_collection",
    "compact_collection",
    "open_collection",
    "update_collection",
]
