"""The collection directory: manifest, documents, embedding shards and indexes."""

from densekit.store.builder import BuildOptions, build_collection
from densekit.store.collection import Collection, open_collection
from densekit.store.manifest import Manifest

__all__ = ["BuildOptions", "Collection", "Manifest", "build_collection", "open_collection"]
