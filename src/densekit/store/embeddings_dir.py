"""Vectors without a collection: `densekit encode` writes resumable shards plus a manifest.

The directory holds ``NNNNN.npy`` shards with ``NNNNN.json`` sidecars (their passage ids), and,
once complete, ``embeddings.json``; with ``output="parquet"`` also ``vectors.parquet``
(columns ``id`` and ``vector``). A rerun resumes like ``densekit index`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from densekit.corpus.chunking import document_passages
from densekit.corpus.document import Document
from densekit.corpus.readers import CorpusReader
from densekit.encode import Encoder
from densekit.errors import CollectionError, InputError, MissingDependencyError
from densekit.files.durability import atomic_write_text
from densekit.files.encode_folder import EMBEDDINGS_MANIFEST, PARQUET_FILE
from densekit.files.shards import read_committed
from densekit.store.build_options import BuildOptions
from densekit.store.builder import check_chunking
from densekit.store.documents import DocumentWriter
from densekit.store.encoding_run import PartitionEncoder, Passage, encode_passages
from densekit.store.layout import LOCK_FILE, directory_lock
from densekit.store.manifest import EncoderInfo

IDS_FILE = ".ids.sqlite"
OutputFormat = Literal["npy", "parquet"]


def encode_corpus(
    corpus: str | Path,
    out: str | Path,
    options: BuildOptions | None = None,
    *,
    output: OutputFormat = "npy",
    overwrite: bool = False,
    encoder: Encoder | None = None,
    remote: PartitionEncoder | None = None,
) -> dict[str, Any]:
    """Encode every passage of ``corpus`` into ``out`` (here, or with ``remote``'s workers);
    returns the written manifest."""
    options = options or BuildOptions(retriever="dense")
    if output not in ("npy", "parquet"):
        raise InputError(f"unknown output format {output!r}; choose npy or parquet")
    directory = Path(out)
    reader = CorpusReader(
        corpus, format=options.corpus_format, fields=options.fields, on_empty=options.on_empty
    )
    encoder = encoder or options.load_encoder()
    check_chunking(options.chunk, encoder)
    _claim(directory, overwrite)
    with directory_lock(directory):
        (directory / EMBEDDINGS_MANIFEST).unlink(missing_ok=True)
        report, shards = encode_passages(
            _unique_passages(reader, encoder, options, directory / IDS_FILE),
            directory,
            encoder,
            rows_per_shard=options.rows_per_shard,
            dtype=options.dtype,
            cache_dir=options.cache_dir,
            progress=options.progress,
            remote=remote,
        )
        if report.passages == 0:
            raise InputError(f"{reader.path}: no documents to encode")
        if output == "parquet":
            _write_parquet(directory, len(shards))
        else:
            (directory / PARQUET_FILE).unlink(missing_ok=True)  # from an earlier parquet run
        manifest = {
            "format": "densekit-embeddings",
            "format_version": 1,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": reader.source,
            "encoder": asdict(EncoderInfo.of(encoder)),
            "documents": reader.stats.documents,
            "skipped_empty": reader.stats.skipped_empty,
            "passages": report.passages,
            "dtype": options.dtype,
            "chunk": asdict(options.chunk) if options.chunk else None,
            "shards": [path.name for path in shards],
            "parquet": PARQUET_FILE if output == "parquet" else None,
            "stats": report.to_dict(),
        }
        atomic_write_text(directory / EMBEDDINGS_MANIFEST, json.dumps(manifest, indent=2))
    return manifest


def _claim(directory: Path, overwrite: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise CollectionError(f"{directory}: exists and is not a directory; choose another --out")
    if (directory / EMBEDDINGS_MANIFEST).exists() and not overwrite:
        raise CollectionError(
            f"{directory}: finished embeddings are already here; pass --overwrite to redo them "
            "(unchanged shards are kept)"
        )
    markers = (EMBEDDINGS_MANIFEST, LOCK_FILE, IDS_FILE)
    ours = any((directory / name).exists() for name in markers) or any(
        directory.glob("[0-9]*.json")
    )
    if directory.exists() and any(directory.iterdir()) and not ours:
        raise CollectionError(
            f"{directory}: exists, is not empty and holds no densekit embeddings; "
            "choose another --out"
        )
    directory.mkdir(parents=True, exist_ok=True)


def _unique_passages(
    reader: CorpusReader, encoder: Encoder, options: BuildOptions, ids_file: Path
) -> Iterator[Passage]:
    # Ids go to a scratch SQLite file, not a set: duplicates are caught in bounded memory.
    ids_file.unlink(missing_ok=True)
    ids = DocumentWriter(ids_file)
    try:
        for document in reader:
            ids.add(Document(document.id, "", source=document.source))
            yield from document_passages(document, encoder.token_spans, options.chunk)
        ids.close()
    except BaseException:
        ids.abort()
        raise
    finally:
        ids_file.unlink(missing_ok=True)


def _write_parquet(directory: Path, shards: int) -> None:
    """Stream the shards into one Parquet file, a shard at a time."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("pyarrow", "parquet") from None
    staging = directory / f".{PARQUET_FILE}.tmp"
    writer = None
    for index in range(shards):
        meta = read_committed(directory, index)
        assert meta is not None  # just written by the encoding run
        vectors = np.load(directory / f"{index:05d}.npy")
        table = pa.table(
            {
                "id": pa.array(meta.ids, pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(vectors.reshape(-1)), vectors.shape[1]
                ),
            }
        )
        writer = writer or pq.ParquetWriter(staging, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
        staging.replace(directory / PARQUET_FILE)
