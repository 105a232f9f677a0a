"""Build a sharded collection: route the corpus's documents to N shards by a hash of their id,
count the whole collection's BM25 statistics, build each shard as a collection scored with
them, then publish the shard manifest in one atomic step.

Every step is resumable: the routed documents are kept until the build is published, a shard
that finished is not built again, and an interrupted shard resumes after its finished
embedding shards (as any build does). Until ``shards.json`` is written, whatever the directory
held before stays the visible collection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tqdm.auto import tqdm

from densekit.corpus.document import Document
from densekit.corpus.in_memory import is_in_memory
from densekit.corpus.readers import CorpusReader, FieldNames
from densekit.encode import Encoder
from densekit.errors import InputError
from densekit.files.durability import fsync_directory
from densekit.index.bm25_statistics import CorpusStatistics
from densekit.index.lexical import corpus_statistics
from densekit.store import layout
from densekit.store.build_options import BuildOptions
from densekit.store.builder import build_collection
from densekit.store.encoding_run import PartitionEncoder
from densekit.store.manifest import MANIFEST_NAME, read_manifest
from densekit.store.sharded import (
    MAX_SHARDS,
    SHARD_NAME,
    ShardedStore,
    ShardSet,
    shard_name,
    shard_of,
)

# Field names of the routed documents: no corpus's own metadata is likely to use them.
ROUTED_FIELDS = FieldNames(id="densekit:id", text="densekit:text", title="densekit:title")
ROUTED_DONE = "routed.json"


def build_sharded(
    corpus: str | Path,
    out: str | Path,
    options: BuildOptions | None = None,
    *,
    shards: int,
    overwrite: bool = False,
    encoder: Encoder | None = None,
    remote: PartitionEncoder | None = None,
    before_building: Callable[[], object] | None = None,
) -> ShardedStore:
    """Build a collection of ``shards`` shards from ``corpus`` into ``out``; return it opened.
    ``remote``: encode with these workers, as :func:`build_collection` does;
    ``before_building``: called with ``out`` held for writing, before anything is written
    (it raises to refuse)."""
    if is_in_memory(corpus):
        raise InputError(
            "a sharded build reads its corpus twice (statistics, then each shard's part): give "
            "a corpus file or folder (write the documents to JSONL first), or build unsharded"
        )
    options = options or BuildOptions()
    check_shard_request(shards, options)
    directory = Path(out)
    reader = CorpusReader(
        corpus, format=options.corpus_format, fields=options.fields, on_empty=options.on_empty
    )
    key = _build_key(reader, options, shards)
    if options.retriever != "bm25" and encoder is None:
        encoder = options.load_encoder()  # once for every shard; a wrong model fails now
    with layout.claimed_output(directory, overwrite=overwrite):
        if before_building is not None:
            before_building()
        routing = directory / f".routing-{key[:8]}"
        _route(reader, routing, shards, progress=options.progress)
        statistics = _lexical_statistics(routing, shards, options)
        names = [shard_name(number, shards, key) for number in range(shards)]
        shard_options = dataclasses.replace(options, corpus_format="jsonl", fields=ROUTED_FIELDS)
        for number, name in enumerate(tqdm(names, desc="shards", disable=not options.progress)):
            folder = directory / name
            if (folder / MANIFEST_NAME).exists():  # finished by an interrupted run of this build
                continue
            build_collection(
                _routed_file(routing, number),
                folder,
                shard_options,
                overwrite=True,
                encoder=encoder,
                lexical_statistics=statistics,
                remote=remote,
            ).close()
        created = datetime.now(UTC).isoformat(timespec="seconds")
        manifests = [read_manifest(directory / name) for name in names]
        ShardSet(names, manifests, created, reader.source).write(directory)
        _clear_after_publishing(directory, names)
    return ShardedStore(directory)


def check_shard_request(shards: int, options: BuildOptions) -> None:
    if not 2 <= shards <= MAX_SHARDS:
        raise InputError(f"--shards {shards}: give 2 to {MAX_SHARDS} (1 is an unsharded build)")
    if options.vectors is not None:
        raise InputError(
            "--vectors cannot be combined with --shards: vectors made elsewhere are stored "
            "unsharded; build without --shards, or let densekit encode the documents"
        )


def _build_key(reader: CorpusReader, options: BuildOptions, shards: int) -> str:
    settings = {
        "corpus": reader.source,
        "format": reader.format,
        "options": dataclasses.asdict(options),
        "shards": shards,
    }
    encoded = json.dumps(settings, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def _routed_file(routing: Path, number: int) -> Path:
    return routing / f"{number:04d}.jsonl"


def _route(reader: CorpusReader, routing: Path, shards: int, *, progress: bool) -> None:
    """Write each document to its shard's file (once: a finished routing is kept)."""
    if (routing / ROUTED_DONE).exists():
        return
    shutil.rmtree(routing, ignore_errors=True)
    routing.mkdir()
    handles = [_routed_file(routing, n).open("w", encoding="utf-8") for n in range(shards)]
    counts, seen = [0] * shards, set()
    try:
        for document in tqdm(reader, desc="routing", unit="doc", disable=not progress):
            if document.id in seen:
                raise InputError(
                    f"{document.source}: duplicate document id {document.id!r} (it appears "
                    "earlier in the corpus); ids must be unique"
                )
            seen.add(document.id)
            number = shard_of(document.id, shards)
            handles[number].write(routed_line(document))
            counts[number] += 1
        for handle in handles:
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        for handle in handles:
            handle.close()
    total = sum(counts)
    if total == 0:
        raise InputError(
            f"{reader.path}: no documents to index (skipped empty: {reader.stats.skipped_empty})"
        )
    if 0 in counts:
        raise InputError(
            f"{reader.path}: {total} documents leave shard {counts.index(0)} of {shards} empty; "
            "use fewer shards"
        )
    record = {"documents": counts, "skipped_empty": reader.stats.skipped_empty}
    (routing / ROUTED_DONE).write_text(json.dumps(record), encoding="utf-8")
    fsync_directory(routing)


def routed_line(document: Document) -> str:
    """``document`` as one JSONL line of a routed file (read back with ROUTED_FIELDS)."""
    record = {
        **document.metadata,
        ROUTED_FIELDS.id: document.id,
        ROUTED_FIELDS.title: document.title,
        ROUTED_FIELDS.text: document.text,
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def _lexical_statistics(
    routing: Path, shards: int, options: BuildOptions
) -> CorpusStatistics | None:
    """The whole collection's BM25 statistics, counted as each shard's index will count them."""
    if options.retriever not in ("bm25", "hybrid"):
        return None

    def texts():
        for number in range(shards):
            reader = CorpusReader(
                _routed_file(routing, number),
                format="jsonl",
                fields=ROUTED_FIELDS,
                on_empty=options.on_empty,
            )
            yield from (document.content for document in reader)

    return corpus_statistics(
        texts(),
        stemmer=options.bm25_stemmer,
        stopwords=options.bm25_stopwords,
        terms=options.lexical_terms(),
    )


def _clear_after_publishing(directory: Path, names: list[str]) -> None:
    """Remove what the published shard manifest does not name: the routed documents, shards
    of an earlier build, and the files of an unsharded collection it replaced."""
    (directory / MANIFEST_NAME).unlink(missing_ok=True)
    for entry in directory.iterdir():
        stale_shard = SHARD_NAME.fullmatch(entry.name) and entry.name not in names
        routed = entry.name.startswith(".routing-")
        generation = entry.name.startswith(layout.GENERATION_PREFIX)
        if entry.is_dir() and (stale_shard or routed or generation):
            shutil.rmtree(entry, ignore_errors=True)
