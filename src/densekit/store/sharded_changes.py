"""Add, update and delete documents of a sharded collection, all shards in one atomic commit.

Each document goes to the shard its id routes to. Because BM25 in every shard is scored with
the whole collection's statistics, any change re-scores every shard's BM25 (as an unsharded
change rebuilds its one BM25 index), so every shard gets a new generation. They are written and
made durable first; then one write of ``shards.json``, which pins each shard's manifest,
publishes them all. Only after it are the shards' own ``manifest.json`` files brought up to date
(and rolled forward by the next write if a crash came between), so a reader sees the collection
before the change or after it, never a mix, and a change that fails in any shard changes none.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

from densekit.corpus.document import Document
from densekit.encode.base import Encoder
from densekit.errors import CollectionError, InputError
from densekit.files.durability import fsync_tree
from densekit.index.bm25_statistics import CorpusStatistics
from densekit.index.lexical import corpus_statistics
from densekit.store import layout
from densekit.store.change_plan import (
    ChangePlan,
    ChangeReport,
    DocumentConflictError,
    check_incoming,
    documents_of,
    ids_of,
    plan_change,
)
from densekit.store.change_writer import ChangeWriter
from densekit.store.integrity import record_checksums
from densekit.store.leftovers import clear_leftovers
from densekit.store.manifest import Manifest, read_manifest, write_manifest
from densekit.store.sharded import ShardedStore, ShardSet, shard_of

NOTHING = ChangePlan(remove=[], append=[], added=0, updated=0, deleted=0)


def update_sharded(
    directory: Path,
    *,
    add: Iterable[Document] = (),
    update: Iterable[Document] = (),
    upsert: Iterable[Document] = (),
    delete: Iterable[str] = (),
    encoder: Encoder | None = None,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> ChangeReport:
    """One change to the sharded collection at ``directory`` (see
    :func:`densekit.store.update_collection`), published in every shard at once."""
    started = time.perf_counter()
    with ExitStack() as held:
        held.enter_context(layout.directory_lock(directory))
        roll_forward(directory, ShardSet.read(directory))
        store = held.enter_context(ShardedStore(directory))
        for shard in store.shards:  # keep writers of single shards out too
            held.enter_context(layout.directory_lock(shard.directory))
        plans = _plans(store, directory, add, update, upsert, delete)
        if any(plan.append for plan in plans) and store.manifest.encoder is not None:
            encoder = store.encoder if encoder is None else store.check_encoder(encoder)
        statistics = _statistics_after(store, plans)
        staged = _write_generations(store, plans, encoder, cache_dir, statistics, progress)
        shard_set = store.shard_set.with_manifests(staged)
        shard_set.write(directory)  # the commit point
        roll_forward(directory, shard_set)
    return ChangeReport(
        added=sum(plan.added for plan in plans),
        updated=sum(plan.updated for plan in plans),
        deleted=sum(plan.deleted for plan in plans),
        documents=sum(manifest.documents for manifest in staged),
        tombstones=sum(manifest.deleted for manifest in staged),
        seconds=round(time.perf_counter() - started, 3),
    )


def _plans(
    store: ShardedStore,
    directory: Path,
    add: Iterable[Document],
    update: Iterable[Document],
    upsert: Iterable[Document],
    delete: Iterable[str],
) -> list[ChangePlan]:
    """Each shard's part of the change, checked against that shard's documents (an id lives in
    the shard it routes to, so that is where it is looked for)."""
    given = {
        "add": documents_of(add, "add"),
        "update": documents_of(update, "update"),
        "upsert": documents_of(upsert, "upsert"),
    }
    deleting = ids_of(delete)
    check_incoming([document for documents in given.values() for document in documents])
    if not deleting and not any(given.values()):
        raise InputError(f"{directory}: no documents to add, update or delete; nothing was changed")
    count, plans = len(store.shards), []
    for number, shard in enumerate(store.shards):
        mine = {
            name: [d for d in documents if shard_of(d.id, count) == number]
            for name, documents in given.items()
        }
        gone = [doc_id for doc_id in deleting if shard_of(doc_id, count) == number]
        if not gone and not any(mine.values()):
            plans.append(NOTHING)
            continue
        plan = plan_change(shard.documents, str(directory), delete=gone, may_empty=True, **mine)
        if len(shard) - len(plan.remove) + len(plan.append) == 0:
            raise DocumentConflictError(
                f"{directory}: the change would leave shard {number} without documents; a shard "
                "cannot be empty. Rebuild the collection with fewer shards instead"
            )
        plans.append(plan)
    return plans


def _statistics_after(store: ShardedStore, plans: list[ChangePlan]) -> CorpusStatistics | None:
    """The BM25 statistics of the whole collection as the change leaves it."""
    lexical = store.manifest.lexical
    if lexical is None:
        return None

    def texts():
        for shard, plan in zip(store.shards, plans, strict=True):
            removed = set(plan.remove)
            rows = shard.documents.live_rows().tolist()
            for row, document in zip(rows, shard.documents.iter_documents(), strict=True):
                if row not in removed:
                    yield document.content
            yield from (document.content for document in plan.append)

    return corpus_statistics(
        texts(), stemmer=lexical.stemmer, stopwords=lexical.stopwords, terms=lexical.terms
    )


def _write_generations(
    store: ShardedStore,
    plans: list[ChangePlan],
    encoder: Encoder | None,
    cache_dir: Path | None,
    statistics: CorpusStatistics | None,
    progress: bool,
) -> list[Manifest]:
    """Every shard's new generation, written and durable but not published; on any failure
    none is left behind."""
    written: list[tuple[Path, str]] = []
    manifests = []
    try:
        for shard, plan in zip(store.shards, plans, strict=True):
            generation = layout.new_generation_name()
            root = shard.directory / generation
            root.mkdir()
            written.append((shard.directory, generation))
            writer = ChangeWriter(shard, generation, root, progress)
            manifest = writer.write(plan, encoder, cache_dir, statistics)
            manifest = record_checksums(shard.directory, manifest)
            fsync_tree(root)
            manifests.append(manifest)
    except BaseException:
        for folder, generation in written:
            shutil.rmtree(folder / generation, ignore_errors=True)
        raise
    return manifests


def roll_forward(directory: Path, shard_set: ShardSet) -> None:
    """Make each shard's own manifest the one ``shards.json`` pins (after a change, or after a
    crash that came between publishing and this), then drop what it no longer names."""
    for name, pinned in zip(shard_set.shards, shard_set.manifests, strict=True):
        folder = directory / name
        if _published(folder) != pinned:
            write_manifest(folder, pinned)
        clear_leftovers(folder, pinned)


def _published(folder: Path) -> Manifest | None:
    try:
        return read_manifest(folder)
    except CollectionError:  # missing or damaged: the pinned one replaces it
        return None
