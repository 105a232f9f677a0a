"""Storing a tuned fusion as a collection's default search.

Only the manifest changes: it is replaced in one rename, under the collection's write lock, with
the hybrid retriever as the default, the fusion table, and the record of how it was chosen.
A reader sees the old default or the new one; a failure before the rename leaves the old one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from densekit.errors import CollectionError
from densekit.store import layout
from densekit.store.manifest import FusionTuningInfo, Manifest, read_manifest, write_manifest


def check_fusable(directory: Path, manifest: Manifest) -> None:
    """Refuse a collection without both lists a hybrid fusion combines."""
    parts = (("dense", manifest.dense), ("BM25", manifest.lexical))
    missing = [name for name, part in parts if part is None]
    if missing:
        has = ", ".join(manifest.retrievers) or "nothing"
        raise CollectionError(
            f"{directory}: has no {' and no '.join(missing)} index (it supports {has}); fusion "
            "combines dense and BM25 lists, so there is nothing to tune: rebuild the collection "
            "with densekit index ... --retriever hybrid"
        )


def store_tuned_fusion(
    directory: str | Path, fusion: Mapping[str, Any], tuning: FusionTuningInfo
) -> Manifest:
    """Make ``fusion`` (a FusionConfig table) the default hybrid search of the collection at
    ``directory``, recording ``tuning``; returns the manifest written."""
    directory = Path(directory)
    read_manifest(directory)  # a missing or broken collection is reported before locking
    with layout.directory_lock(directory):
        manifest = read_manifest(directory)
        check_fusable(directory, manifest)
        manifest = dataclasses.replace(
            manifest, retriever="hybrid", fusion=dict(fusion), fusion_tuning=tuning
        )
        write_manifest(directory, manifest)
    return manifest
