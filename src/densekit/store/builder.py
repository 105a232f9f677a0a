"""Build a collection: ingest, encode, index, then publish with one atomic manifest write."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from densekit.corpus.chunking import ChunkConfig, document_passages
from densekit.corpus.readers import CorpusFormat, CorpusReader, EmptyPolicy, FieldNames
from densekit.encode import DEFAULT_MODEL, Encoder, load_encoder
from densekit.encode.batching import DEFAULT_BATCH_TOKENS
from densekit.encode.cache import default_cache_dir
from densekit.encode.sparse import SparseTextEncoder
from densekit.errors import InputError
from densekit.files.durability import save_array
from densekit.files.shards import DEFAULT_ROWS_PER_SHARD, STORAGE_DTYPES, open_shards
from densekit.files.vectors import VectorTable, read_vectors
from densekit.index.lexical import (
    CLASSIC_TERMS,
    DEFAULT_B,
    DEFAULT_K1,
    HYBRID_TERMS,
    NO_STEMMER,
    TermWeights,
    check_stemmer,
)
from densekit.index.spec import parse_spec
from densekit.index.vectors import ShardedVectors
from densekit.store import layout
from densekit.store.collection import StoredCollection
from densekit.store.commit import publish
from densekit.store.documents import DocumentStore, DocumentWriter
from densekit.store.encoding_run import Passage, encode_passages
from densekit.store.given_vectors import (
    given_encoder_info,
    store_given_vectors,
    vectors_fingerprint,
)
from densekit.store.indexing import build_ann_index, index_lexical, index_sparse
from densekit.store.leftovers import clear_leftovers
from densekit.store.manifest import (
    RETRIEVER_NAMES,
    DenseInfo,
    EncoderInfo,
    LexicalInfo,
    Manifest,
    RetrieverName,
)


class FusionTable(Protocol):
    """A fusion setting that writes itself as a table (densekit.retrieve.FusionConfig)."""

    def to_dict(self) -> dict[str, Any]: ...


def fusion_table(fusion: Mapping[str, Any] | FusionTable) -> dict[str, Any]:
    """The table the manifest records for ``fusion``; what it means is retrieve's to check."""
    if isinstance(fusion, Mapping):
        return dict(fusion)
    if callable(getattr(fusion, "to_dict", None)):
        return dict(fusion.to_dict())
    raise InputError(
        f"fusion must be a densekit.FusionConfig or its to_dict() table, got {fusion!r}"
    )


@dataclass(frozen=True)
class BuildOptions:
    """How to turn a corpus into a collection; the defaults reproduce the published numbers."""

    model: str = DEFAULT_MODEL
    backend: str | None = None
    retriever: RetrieverName = "hybrid"
    chunk: ChunkConfig | None = None
    corpus_format: CorpusFormat = "auto"
    fields: FieldNames = field(default_factory=FieldNames)
    on_empty: EmptyPolicy = "skip"
    batch_tokens: int = DEFAULT_BATCH_TOKENS
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD
    dtype: str = "float32"
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    bm25_k1: float = DEFAULT_K1
    bm25_b: float = DEFAULT_B
    # BM25's stemmer: a PyStemmer language, or "none" to match words exactly.
    bm25_stemmer: str = "english"
    # The weights of BM25's extra terms (TermWeights: exact word forms, adjacent word pairs);
    # None: the retriever's default, HYBRID_TERMS in a hybrid, classic BM25 (0, as Pyserini and
    # bm25s score) in a BM25 collection.
    bm25_exact_weight: float | None = None
    bm25_pair_weight: float | None = None
    # The default search's fusion: a densekit.retrieve.FusionConfig, kept as its to_dict() table
    # (the store cannot read the type); empty: retrieve's default, chosen at search time.
    fusion: Mapping[str, Any] | FusionTable = field(default_factory=dict)
    index: str = "flat"
    sparse: str | None = None  # a learned sparse model (e.g. "splade-tiny") adds a SPLADE index
    layers: int | None = None  # encode with the model's first layers (2D Matryoshka)
    dim: int | None = None  # keep the first dimensions of each vector (Matryoshka)
    # Document vectors made elsewhere (.npy, .parquet or a densekit encode folder), used
    # instead of encoding; ``vectors_model`` names the model that made them, if densekit can
    # load it to encode queries (otherwise queries come as vectors too).
    vectors: str | None = None
    vector_ids: str | None = None
    vectors_model: str | None = None
    progress: bool = True

    def load_encoder(self) -> Encoder:
        """The model these options encode with."""
        return load_encoder(
            self.model,
            backend=self.backend,
            layers=self.layers,
            dim=self.dim,
            batch_tokens=self.batch_tokens,
        )

    def lexical_terms(self) -> TermWeights:
        """The BM25 index's extra terms: as given, else the retriever's default."""
        default = HYBRID_TERMS if self.retriever == "hybrid" else CLASSIC_TERMS
        exact = default.exact if self.bm25_exact_weight is None else self.bm25_exact_weight
        pairs = default.pairs if self.bm25_pair_weight is None else self.bm25_pair_weight
        # Without a stemmer every word is its exact form already.
        return TermWeights(0.0 if self.bm25_stemmer == NO_STEMMER else exact, pairs)

    def __post_init__(self) -> None:
        parse_spec(self.index)  # a malformed spec fails before any work
        object.__setattr__(self, "fusion", fusion_table(self.fusion))
        if self.retriever not in RETRIEVER_NAMES:
            raise InputError(
                f"unknown retriever {self.retriever!r}; choose one of {', '.join(RETRIEVER_NAMES)}"
            )
        if self.dtype not in STORAGE_DTYPES:
            raise InputError(
                f"unknown vector storage {self.dtype!r}; choose one of {', '.join(STORAGE_DTYPES)}"
            )
        if self.retriever == "splade" and self.sparse is None:
            raise InputError(
                "the splade retriever searches a learned sparse index; name its model with "
                "--sparse splade-tiny (sparse='splade-tiny'), or pick another retriever"
            )
        check_stemmer(self.bm25_stemmer)
        self.lexical_terms()  # weights out of range fail before any work
        if self.vectors is not None and self.retriever == "bm25":
            raise InputError("--vectors are dense vectors; build with --retriever dense or hybrid")
        if self.vectors is not None and self.chunk is not None:
            raise InputError(
                "--vectors give one vector per document, so the documents cannot be chunked; "
                "drop --chunk-tokens"
            )
        if self.retriever == "bm25" and self.chunk is not None:
            raise InputError(
                "chunking splits documents for dense vectors; BM25 indexes whole documents. "
                "Drop --chunk-tokens or build with --retriever dense or hybrid"
            )


def build_collection(
    corpus: str | Path,
    out: str | Path,
    options: BuildOptions | None = None,
    *,
    overwrite: bool = False,
    encoder: Encoder | None = None,
) -> StoredCollection:
    """Build a collection from ``corpus`` into ``out`` and return it opened.

    A crash or Ctrl-C at any point leaves the previous collection (if any) the visible one: the
    unfinished generation is never named by a manifest. Its finished embedding shards stay, and
    the next build with the same settings resumes after them.
    """
    options = options or BuildOptions()
    directory = Path(out)
    reader = CorpusReader(
        corpus, format=options.corpus_format, fields=options.fields, on_empty=options.on_empty
    )
    given = None
    if options.vectors is not None:  # bad vectors fail now, before anything is written
        given = read_vectors(options.vectors, options.vector_ids)
        if given.ids is not None:
            given.by_id()  # repeated ids fail here, not after reading the corpus
        if options.vectors_model is not None:
            encoder = encoder or load_encoder(
                options.vectors_model,
                backend=options.backend,
                layers=options.layers,
                dim=options.dim,
            )
            given.check_dimension(encoder.dimension, f"model {encoder.name!r}")
    elif options.retriever != "bm25":  # a wrong model fails now, not after reading the corpus
        encoder = encoder or options.load_encoder()
        check_chunking(options.chunk, encoder)
    sparse_encoder = SparseTextEncoder(options.sparse) if options.sparse is not None else None
    key = _build_key(reader, options, encoder, given)
    with layout.claimed_output(directory, overwrite=overwrite) as created:
        generation = layout.unfinished_generation(directory, key) or layout.start_generation(
            directory, key
        )
        root = directory / generation
        clear_leftovers(directory, layout.published_manifest(directory), keep=generation)
        try:
            manifest = _build_generation(
                reader, directory, generation, options, encoder, sparse_encoder, given
            )
        except BaseException:
            # Finished shards are kept for the next run to resume from; nothing else is.
            if not layout.has_committed_shards(root):
                shutil.rmtree(directory if created else root, ignore_errors=True)
            raise
        # Past this point an interruption leaves either the old manifest (and a stale
        # generation the next build removes) or the new one: never a manifest without its files.
        publish(directory, manifest)
    return StoredCollection(directory)


def _build_key(
    reader: CorpusReader,
    options: BuildOptions,
    encoder: Encoder | None,
    given: VectorTable | None = None,
) -> str:
    """What a resumed build must share with the interrupted one to reuse its shards."""
    settings = {
        "vectors": vectors_fingerprint(given) if given is not None else None,
        "corpus": str(reader.path.resolve()),
        "format": reader.format,
        "fields": asdict(options.fields),
        "on_empty": options.on_empty,
        "retriever": options.retriever,
        "fingerprint": encoder.fingerprint if encoder is not None else None,
        "chunk": asdict(options.chunk) if options.chunk else None,
        "rows_per_shard": options.rows_per_shard,
        "dtype": options.dtype,
        "sparse": options.sparse,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def check_chunking(chunk: ChunkConfig | None, encoder: Encoder) -> None:
    if chunk is not None and chunk.size > encoder.document_tokens:
        raise InputError(
            f"chunks of {chunk.size} tokens do not fit model {encoder.name!r}, which reads "
            f"{encoder.document_tokens} tokens of a document (after its special tokens and "
            f"prompt); use --chunk-tokens {encoder.document_tokens} or less"
        )


def _build_generation(
    reader: CorpusReader,
    directory: Path,
    generation: str,
    options: BuildOptions,
    encoder: Encoder | None,
    sparse_encoder: SparseTextEncoder | None = None,
    given: VectorTable | None = None,
) -> Manifest:
    root = directory / generation
    started = time.perf_counter()
    (root / layout.DOCUMENTS_FILE).unlink(missing_ok=True)  # re-read on resume: it is quick
    writer = DocumentWriter(root / layout.DOCUMENTS_FILE)
    try:
        writer.add_all(tqdm(reader, desc="reading", unit="doc", disable=not options.progress))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    if writer.count == 0:
        raise InputError(
            f"{reader.path}: no documents to index (skipped empty: {reader.stats.skipped_empty})"
        )
    stats: dict[str, object] = {
        "documents": writer.count,
        "skipped_empty": reader.stats.skipped_empty,
        "skipped_empty_ids": reader.stats.first_skipped,
        "ingest_seconds": round(time.perf_counter() - started, 3),
    }
    store = DocumentStore(root / layout.DOCUMENTS_FILE)
    try:
        encoder_info = dense = lexical = sparse = None
        if given is not None:
            started = time.perf_counter()
            shard_paths = store_given_vectors(
                store, given, root / layout.EMBEDDINGS_DIR, options.rows_per_shard, options.dtype
            )
            stats["vectors_seconds"] = round(time.perf_counter() - started, 3)
            encoder_info = given_encoder_info(given, encoder)
            dense = _dense_info(
                root, generation, shard_paths, given.dimension, len(store), None, options, stats
            )
        elif options.retriever != "bm25":
            assert encoder is not None  # loaded by build_collection
            encoder_info, dense = _encode(store, root, generation, encoder, options, stats)
        if options.retriever in ("bm25", "hybrid"):
            started = time.perf_counter()
            terms = options.lexical_terms()
            settings = LexicalInfo(
                directory="",
                k1=options.bm25_k1,
                b=options.bm25_b,
                stemmer=options.bm25_stemmer,
                exact_weight=terms.exact,
                pair_weight=terms.pairs,
            )
            lexical = index_lexical(store, root, generation, settings, progress=options.progress)
            stats["bm25_seconds"] = round(time.perf_counter() - started, 3)
        if sparse_encoder is not None:
            started = time.perf_counter()
            sparse = index_sparse(
                list(store.iter_documents()),
                root,
                generation,
                sparse_encoder,
                progress=options.progress,
            )
            stats["sparse_seconds"] = round(time.perf_counter() - started, 3)
    finally:
        store.close()
    return Manifest(
        generation=generation,
        documents=writer.count,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        source=str(reader.path.resolve()),
        files=layout.files_with_sizes(directory, generation),
        retriever=options.retriever,
        encoder=encoder_info,
        dense=dense,
        lexical=lexical,
        sparse=sparse,
        fusion=fusion_table(options.fusion),
        stats=stats,
    )


def _encode(
    store: DocumentStore,
    root: Path,
    generation: str,
    encoder: Encoder,
    options: BuildOptions,
    stats: dict[str, object],
) -> tuple[EncoderInfo, DenseInfo]:
    offsets = [0]

    def passages() -> Iterator[Passage]:
        for document in store.iter_documents():
            pieces = document_passages(document, encoder.token_spans, options.chunk)
            offsets.append(offsets[-1] + len(pieces))
            yield from pieces

    report, shard_paths = encode_passages(
        passages(),
        root / layout.EMBEDDINGS_DIR,
        encoder,
        rows_per_shard=options.rows_per_shard,
        dtype=options.dtype,
        cache_dir=options.cache_dir,
        progress=options.progress,
        expected=len(store) if options.chunk is None else None,
    )
    stats["encoding"] = report.to_dict()
    stats["encode_seconds"] = report.seconds
    stats["encode_docs_per_second"] = (
        round(len(store) / report.seconds, 2) if report.seconds else None
    )
    grouping = np.asarray(offsets, dtype=np.int64) if options.chunk is not None else None
    dense = _dense_info(
        root, generation, shard_paths, encoder.dimension, report.passages, grouping, options, stats
    )
    return EncoderInfo.of(encoder), dense


def _dense_info(
    root: Path,
    generation: str,
    shard_paths: list[Path],
    dimension: int,
    rows: int,
    offsets: np.ndarray | None,
    options: BuildOptions,
    stats: dict[str, object],
) -> DenseInfo:
    """The dense part of the manifest, after building the approximate index if one is asked."""
    offsets_file = None
    if offsets is not None:
        offsets_file = f"{generation}/{layout.PASSAGE_OFFSETS_FILE}"
        save_array(root / layout.PASSAGE_OFFSETS_FILE, offsets)
    spec = parse_spec(options.index)
    index_record: dict[str, object] = {}
    if not spec.is_exact:
        started = time.perf_counter()
        vectors = ShardedVectors(open_shards(shard_paths, dimension))
        index_record = build_ann_index(spec, vectors, offsets, root, generation)
        stats["index_seconds"] = round(time.perf_counter() - started, 3)
    return DenseInfo(
        index=str(spec),
        shards=[f"{generation}/{layout.EMBEDDINGS_DIR}/{p.name}" for p in shard_paths],
        rows=rows,
        passage_offsets=offsets_file,
        chunk_size=options.chunk.size if options.chunk else None,
        chunk_overlap=options.chunk.overlap if options.chunk else None,
        index_file=index_record.get("file"),  # type: ignore[arg-type]
        index_digest=index_record.get("digest"),  # type: ignore[arg-type]
    )
