"""A sharded collection: one directory holding N collections and a manifest naming them.

Documents are routed to a shard by a stable hash of their id, so a document's shard never
depends on what else the collection holds. Each shard is an ordinary collection; the shard
manifest (``shards.json``) names them, and replacing it is the one atomic step that publishes a
sharded build. Their BM25 indexes are scored with the whole collection's statistics
(:mod:`densekit.index.bm25_statistics`), so the shards' lists merge into the unsharded ranking.

A document is addressed across shards by a global row: ``local row * shards + shard``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densekit.errors import CollectionError
from densekit.files.durability import atomic_write_text
from densekit.store.collection import StoredCollection
from densekit.store.document_filters import DocumentFilters
from densekit.store.layout import SHARDS_FILE
from densekit.store.manifest import Manifest, parse_manifest, versioned
from densekit.store.shard_checks import check_alike

if TYPE_CHECKING:
    from densekit.corpus.document import Document
    from densekit.encode import Encoder
    from densekit.encode.late_interaction import LateInteractionEncoder
    from densekit.encode.precomputed import PrecomputedQueries
    from densekit.encode.sparse import SparseTextEncoder
    from densekit.files.vectors import VectorTable

SHARDS_FORMAT = "densekit-shards"
SHARDS_FORMAT_VERSION = 1
ROUTING = "blake2b-64(id) mod shards"
# Shard folders: their number, their count, and the build that made them (so an overwrite
# writes new folders beside the published ones).
SHARD_NAME = re.compile(r"shard-(\d{3,})-of-(\d{3,})-([0-9a-f]{8})")
MAX_SHARDS = 4096
# Opening retries when a change publishes new shard manifests while it reads.
_OPEN_ATTEMPTS = 3


def shard_of(doc_id: str, shards: int) -> int:
    """The shard a document id routes to: stable across runs, machines and Python versions."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_name(number: int, shards: int, build: str) -> str:
    return f"shard-{number:03d}-of-{shards:03d}-{build[:8]}"


def is_sharded(directory: str | Path) -> bool:
    return (Path(directory) / SHARDS_FILE).is_file()


@dataclass(frozen=True)
class ShardSet:
    """What ``shards.json`` records: the shard folders in shard order, the manifest of each that
    the collection is made of (pinned here, so one write of this file publishes a change to
    several shards at once), how documents route to them, and where they came from."""

    shards: list[str]
    manifests: list[Manifest]
    created: str
    source: str
    routing: str = ROUTING
    format: str = SHARDS_FORMAT
    format_version: int = SHARDS_FORMAT_VERSION

    @property
    def generation(self) -> str:
        """What this publication holds: every shard's generation (a change makes new ones)."""
        return "+".join(manifest.generation for manifest in self.manifests)

    def write(self, directory: Path) -> None:
        record = {
            "format": self.format,
            "format_version": self.format_version,
            "shards": self.shards,
            "routing": self.routing,
            "created": self.created,
            "source": self.source,
            "manifests": [asdict(versioned(manifest)) for manifest in self.manifests],
        }
        atomic_write_text(directory / SHARDS_FILE, json.dumps(record, indent=1))

    @classmethod
    def read(cls, directory: Path) -> ShardSet:
        path = directory / SHARDS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise CollectionError(f"{path}: unreadable shard manifest ({exc}); rebuild") from None
        if not isinstance(data, dict) or data.get("format") != SHARDS_FORMAT:
            raise CollectionError(f"{path}: not a densekit shard manifest")
        if data.get("format_version") != SHARDS_FORMAT_VERSION:
            raise CollectionError(
                f"{path}: shard manifest version {data.get('format_version')!r} is not one this "
                f"densekit reads ({SHARDS_FORMAT_VERSION}); open it with the densekit that wrote it"
            )
        shards, manifests = data.get("shards"), data.get("manifests")
        if not isinstance(shards, list) or not shards:
            raise CollectionError(f"{path}: field 'shards' must list the shard folders")
        if not isinstance(manifests, list) or len(manifests) != len(shards):
            raise CollectionError(f"{path}: field 'manifests' must hold one per shard; rebuild")
        for number, name in enumerate(shards):
            match = SHARD_NAME.fullmatch(name) if isinstance(name, str) else None
            if match is None or (int(match[1]), int(match[2])) != (number, len(shards)):
                raise CollectionError(
                    f"{path}: shards[{number}] is {name!r}, not the folder of shard {number} of "
                    f"{len(shards)}; the manifest was edited or damaged: rebuild"
                )
        if data.get("routing") != ROUTING:
            raise CollectionError(
                f"{path}: documents were routed by {data.get('routing')!r}, which this densekit "
                f"does not know ({ROUTING})"
            )
        pinned = [
            parse_manifest(manifest, path.with_name(f"{SHARDS_FILE}: manifests[{number}]"))
            for number, manifest in enumerate(manifests)
        ]
        return cls(shards, pinned, str(data.get("created", "")), str(data.get("source", "")))

    def with_manifests(self, manifests: list[Manifest]) -> ShardSet:
        return replace(self, manifests=manifests)


class ShardedStore:
    """A sharded collection directory, opened read-only: one snapshot of every shard.

    Opening checks that every shard is there and that they are shards of one collection: the
    same model, indexes and search settings, and BM25 scores made with their shared statistics.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.shards: list[StoredCollection] = []
        self._on_close: list[Callable[[], object]] = []
        for attempt in range(_OPEN_ATTEMPTS):
            self.shard_set = ShardSet.read(self.directory)
            try:
                pinned = zip(self.shard_set.shards, self.shard_set.manifests, strict=True)
                for number, (name, manifest) in enumerate(pinned):
                    self.shards.append(self._open_shard(number, name, manifest))
                check_alike(self.directory, self.shards)
                break
            except BaseException as error:
                self.close()
                # A change may have published (and cleaned up after) between reading the
                # shard manifest and opening the shards' files: then open the new one.
                retry = isinstance(error, CollectionError | OSError) and self._superseded()
                if not retry or attempt + 1 == _OPEN_ATTEMPTS:
                    raise
                self.shards = []
        self.documents = ShardedDocuments(self.shards)

    @property
    def document_filters(self) -> list[DocumentFilters]:
        """Each shard's filters: a filter is checked across all of them."""
        return [shard.filters for shard in self.shards]

    def _open_shard(self, number: int, name: str, manifest: Manifest) -> StoredCollection:
        folder = self.directory / name
        if not folder.is_dir():
            raise CollectionError(
                f"{self.directory}: shard folder {name} is missing; restore it from a backup "
                "or rebuild the collection"
            )
        try:
            return StoredCollection(folder, manifest=manifest)
        except CollectionError as error:
            raise CollectionError(
                f"{self.directory}: shard {number} ({name}) does not hold what {SHARDS_FILE} "
                f"pins for it ({error}): the shard folder was replaced, damaged, or changed on "
                "its own (a write to the shard's folder instead of the collection); restore it "
                "from a backup, or rebuild with densekit index ... --shards N"
            ) from None

    def _superseded(self) -> bool:
        try:
            return ShardSet.read(self.directory) != self.shard_set
        except CollectionError:
            return False

    @property
    def manifest(self) -> Manifest:
        """The search settings every shard shares (the first shard's manifest, with the whole
        collection's document count)."""
        first = self.shards[0].manifest
        return _with_counts(first, sum(s.manifest.documents for s in self.shards))

    @property
    def retrievers(self) -> list[str]:
        return self.shards[0].retrievers

    @property
    def encoder(self) -> Encoder:
        return self.shards[0].encoder

    @property
    def adapter(self) -> None:
        return None  # refused at build time: adapters are per collection, not yet per shard

    def check_encoder(self, encoder: Encoder) -> Encoder:
        return self.shards[0].check_encoder(encoder)

    def given_query_vectors(
        self, table: VectorTable, queries: Mapping[str, str]
    ) -> PrecomputedQueries:
        return self.shards[0].given_query_vectors(table, queries)

    @property
    def sparse_encoder(self) -> SparseTextEncoder:
        return self.shards[0].sparse_encoder

    @property
    def multivector_encoder(self) -> LateInteractionEncoder:
        return self.shards[0].multivector_encoder

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    def __repr__(self) -> str:
        return (
            f"ShardedStore({str(self.directory)!r}, shards={len(self.shards)}, "
            f"documents={len(self)}, retrievers={self.retrievers})"
        )

    def __enter__(self) -> ShardedStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def global_rows(self, shard: int, rows: np.ndarray) -> np.ndarray:
        return rows.astype(np.int64) * len(self.shards) + shard

    def reference_documents(self, count: int) -> list[tuple[int, int]]:
        """(shard, row) of the whole collection's ``count`` reference documents, in hash order:
        the documents, in the order, an unsharded build of it would choose (see
        :meth:`StoredCollection.reference_documents`)."""
        keyed = []
        for number, shard in enumerate(self.shards):
            ids = shard.row_ids
            for row in shard.reference_documents(count).tolist():
                keyed.append((zlib.crc32(ids[row].encode("utf-8")), ids[row], number, row))
        return [(shard, row) for _, _, shard, row in sorted(keyed)[:count]]

    @cached_property
    def row_ids(self) -> list[str | None]:
        """The document id of each global row; ``None`` for rows that hold none."""
        count = len(self.shards)
        ids: list[str | None] = [None] * (count * max(len(s.row_ids) for s in self.shards))
        for number, shard in enumerate(self.shards):
            ids[number : number + count * len(shard.row_ids) : count] = shard.row_ids
        return ids

    @property
    def doc_ids(self) -> list[str]:
        return [doc_id for shard in self.shards for doc_id in shard.doc_ids]

    def on_close(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when this snapshot closes (what serves it elsewhere stops)."""
        self._on_close.append(callback)

    def close(self) -> None:
        while self._on_close:
            self._on_close.pop()()
        for shard in self.shards:
            shard.close()


def _with_counts(manifest: Manifest, documents: int) -> Manifest:
    return replace(manifest, documents=documents, deleted=0)


class ShardedDocuments:
    """The documents of every shard, by global row."""

    def __init__(self, shards: Sequence[StoredCollection]) -> None:
        self.shards = list(shards)

    def __len__(self) -> int:
        return sum(len(shard.documents) for shard in self.shards)

    def get_rows(self, rows: Sequence[int]) -> list[Document]:
        count = len(self.shards)
        wanted: dict[int, list[int]] = {}
        for row in rows:
            wanted.setdefault(int(row) % count, []).append(int(row) // count)
        found: dict[int, Document] = {}
        for shard, local in wanted.items():
            documents = self.shards[shard].documents.get_rows(local)
            found.update(
                (row * count + shard, document)
                for row, document in zip(local, documents, strict=True)
            )
        return [found[int(row)] for row in rows]

    def get(self, doc_id: str) -> Document | None:
        return self.shards[shard_of(doc_id, len(self.shards))].documents.get(doc_id)

    def iter_documents(self, batch_size: int = 1000) -> Iterator[Document]:
        for shard in self.shards:
            yield from shard.documents.iter_documents(batch_size)

    def close(self) -> None:
        for shard in self.shards:
            shard.documents.close()


def retire_shards(directory: Path) -> None:
    """After an unsharded collection is published at ``directory``: drop the shard manifest
    (the unsharded collection is then the visible one), then the shards it named."""
    (directory / SHARDS_FILE).unlink(missing_ok=True)
    for entry in directory.iterdir():
        if SHARD_NAME.fullmatch(entry.name) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


StoreOpener = Callable[[Path], StoredCollection | ShardedStore]
"""What opens a collection's store: :func:`open_store`, or one that also starts what searches
its shards elsewhere (:func:`densekit.distributed.shard_actors.ray_opener`)."""


def open_store(directory: str | Path) -> StoredCollection | ShardedStore:
    """The collection at ``directory``, sharded or not."""
    return ShardedStore(directory) if is_sharded(directory) else StoredCollection(directory)
