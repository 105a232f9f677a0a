"""Shards that belong together: one collection's shards agree on their models, retrievers,
search settings and BM25 statistics; anything else is refused by name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from densekit.errors import CollectionError
from densekit.store.collection import StoredCollection
from densekit.store.manifest import Manifest, MultiVectorInfo, SparseInfo


def check_alike(directory: Path, shards: Sequence[StoredCollection]) -> None:
    """Refuse shards that are not parts of one collection, naming the first that differs."""
    first = shards[0].manifest
    for number, shard in enumerate(shards[1:], 1):
        manifest = shard.manifest
        for what, mine, theirs in (
            ("model", _model(first), _model(manifest)),
            ("retrievers", first.retrievers, manifest.retrievers),
            ("default search", first.retriever, manifest.retriever),
            ("BM25 settings", _lexical(first), _lexical(manifest)),
            ("sparse model", _fingerprint(first.sparse), _fingerprint(manifest.sparse)),
            (
                "late-interaction model",
                _fingerprint(first.multivector),
                _fingerprint(manifest.multivector),
            ),
            ("fusion", first.fusion, manifest.fusion),
        ):
            if mine != theirs:
                raise CollectionError(
                    f"{directory}: shard {number} ({shard.directory.name}) has {what} {theirs!r}, "
                    f"shard 0 has {mine!r}: they are not shards of one collection; rebuild it "
                    "with densekit index ... --shards N"
                )
    check_shared_statistics(directory, shards)


def check_shared_statistics(directory: Path, shards: Sequence[StoredCollection]) -> None:
    """Every shard's BM25 must be scored with the sum of the shards' own counts, or merged
    lists would rank as no single collection does."""
    if shards[0].manifest.lexical is None:
        return
    records = [shard.lexical_index.shard for shard in shards]
    if None in records:
        raise CollectionError(
            f"{directory}: shard {records.index(None)}'s BM25 index was scored with its own "
            "statistics only, not the collection's (was it changed on its own?); rebuild the "
            "collection with densekit index ... --shards N"
        )
    known = [record for record in records if record is not None]  # all, after the check above
    total = {
        "documents": sum(record.documents for record in known),
        "length": sum(record.length for record in known),
    }
    for number, record in enumerate(known):
        if record.scored_with != total:
            raise CollectionError(
                f"{directory}: shard {number}'s BM25 scores were made with {record.scored_with}, "
                f"but the shards now hold {total}: the collection was changed outside densekit "
                "or a change was interrupted; rebuild it with densekit index ... --shards N"
            )


def _model(manifest: Manifest) -> str | None:
    return manifest.encoder.fingerprint if manifest.encoder is not None else None


def _lexical(manifest: Manifest) -> dict | None:
    if manifest.lexical is None:
        return None
    settings = asdict(manifest.lexical)
    settings.pop("directory")
    return settings


def _fingerprint(part: SparseInfo | MultiVectorInfo | None) -> str | None:
    return part.fingerprint if part is not None else None
