"""The collection directory and its writers: manifest, documents, embedding shards, indexes.

The store knows no search: :mod:`densekit.retrieve` opens collections for it.
"""

from densekit.store.build_options import BuildOptions
from densekit.store.builder import build_collection
from densekit.store.changes import ChangeReport, update_collection
from densekit.store.collection import StoredCollection
from densekit.store.compaction import CompactionReport, compact_collection
from densekit.store.manifest import Manifest

__all__ = [
    "BuildOptions",
    "ChangeReport",
    "CompactionReport",
    "Manifest",
    "StoredCollection",
    "build_collection",
    "compact_collection",
    "update_collection",
]
