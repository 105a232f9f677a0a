"""Training an adapter or a lexical bridge for a collection, from a BEIR dataset's judged
queries, on the vectors the collection already holds (the model only encodes the queries)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from densekit.adapt.binary_codes import BinaryCodeSpec, train_binary_head
from densekit.adapt.training import AdapterTraining, train_adapter, train_lexsem
from densekit.encode.adapters.lexsem import LexSemBridge, LexSemSpec, document_frequency_idf
from densekit.encode.adapters.query_tokens import (
    hidden_size_of,
    read_query_tokens,
    token_embeddings_of,
    tokenizer_of,
)
from densekit.encode.adapters.residual import AdapterSpec
from densekit.errors import InputError
from densekit.evaluate.beir import load_beir
from densekit.store.collection import StoredCollection

AdapterKind = Literal["residual", "lexsem", "binary"]
KINDS: tuple[AdapterKind, ...] = ("residual", "lexsem", "binary")


@dataclass(frozen=True)
class AdaptOptions:
    kind: AdapterKind = "residual"
    residual: AdapterSpec = field(default_factory=AdapterSpec)
    lexsem: LexSemSpec = field(default_factory=LexSemSpec)
    binary: BinaryCodeSpec = field(default_factory=BinaryCodeSpec)
    training: AdapterTraining = field(default_factory=AdapterTraining)
    split: str = "train"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"adapter kind must be one of {', '.join(KINDS)}, got {self.kind!r}")


@dataclass(frozen=True)
class TrainingSet:
    """Frozen vectors and the judged pairs between them, in the collection's vector rows."""

    queries: list[str]
    query_vectors: np.ndarray
    document_vectors: np.ndarray
    pairs: np.ndarray
    skipped_judgements: int


def training_set(
    dataset: str | Path,
    collection: StoredCollection,
    split: str,
    query_vectors: str | Path | None = None,
) -> TrainingSet:
    """The split's queries (encoded now, or looked up in ``query_vectors``) and positives
    (every passage of a judged document)."""
    data = load_beir(dataset, split)
    if query_vectors is not None:
        from densekit.files.vectors import read_vectors

        encoder = collection.given_query_vectors(read_vectors(query_vectors), data.queries)
    else:
        encoder = collection.encoder  # the model's own vectors: an adapter maps those
    shards, groups = collection.dense_vectors()
    documents = np.concatenate([np.asarray(shard) for shard in shards.shards])
    rows = collection.documents.rows_of({doc for judged in data.qrels.values() for doc in judged})
    names, pairs, skipped = [], [], 0
    for query_id, judged in data.qrels.items():
        positives = [doc for doc, grade in judged.items() if grade > 0]
        found = [rows[doc] for doc in positives if doc in rows]
        skipped += len(positives) - len(found)
        if not found or query_id not in data.queries:
            continue
        for row in found:
            start, end = (
                (row, row + 1)
                if groups.offsets is None
                else (int(groups.offsets[row]), int(groups.offsets[row + 1]))
            )
            pairs.extend((len(names), passage) for passage in range(start, end))
        names.append(query_id)
    if not pairs:
        raise InputError(
            f"{dataset}: no judged positive of split {split!r} is in {collection.directory}; "
            "train on the dataset the collection was built from"
        )
    given = np.asarray(pairs)
    if groups.deleted_rows is not None:
        # Deleted (or replaced) documents' vectors stay until compaction; an old version of a
        # judged document must not be its query's negative. Keep live rows, renumbered.
        live = ~groups.deleted_rows
        given = given[live[given[:, 1]]]
        given[:, 1] = (np.cumsum(live) - 1)[given[:, 1]]
        documents = documents[live]
    texts = [data.queries[q] for q in names]
    vectors = encoder.encode_queries(texts, progress=sys.stderr.isatty())
    return TrainingSet(texts, vectors, documents, given, skipped)


def adapt_collection(
    dataset: str | Path,
    directory: str | Path,
    options: AdaptOptions,
    *,
    attach: bool = True,
    out: str | Path | None = None,
    query_vectors: str | Path | None = None,
) -> dict[str, Any]:
    """Train on ``dataset``'s judged pairs; store the result in the collection (``attach``)
    and/or in the folder ``out``. ``query_vectors`` hold the training queries' vectors when
    the collection has no model to encode them. Returns the training report."""
    from densekit.encode.adapters.files import save_adapter
    from densekit.files.durability import refuse_to_replace
    from densekit.store.adapters import attach_adapter, check_attachable

    if options.kind == "binary":
        if out is not None or not attach:
            raise InputError(
                "a binary head is stored in the collection's index; --out and --no-store do "
                "not apply to --kind binary"
            )
        return adapt_binary_codes(dataset, directory, options, query_vectors)
    # Everything that would refuse the result is checked before minutes of training.
    if out is not None:
        refuse_to_replace(Path(out), overwrite=False)
    with StoredCollection(directory) as collection:
        if attach:
            maps_documents = options.kind == "residual" and options.residual.sides != "query"
            dimension = collection.manifest.encoder.dimension if collection.manifest.encoder else 0
            check_attachable(collection.directory, collection.manifest, dimension, maps_documents)
        data = training_set(dataset, collection, options.split, query_vectors)
        assert collection.manifest.encoder is not None  # training_set read dense vectors
        fingerprint = collection.manifest.encoder.fingerprint
        tokenizer = None
        if options.kind == "residual":
            adapter, report = train_adapter(
                data.query_vectors,
                data.pairs,
                data.document_vectors,
                options.residual,
                options.training,
            )
            adapter_obj: Any = adapter
        else:
            encoder = collection.encoder
            tokenizer = tokenizer_of(encoder)
            learned = options.lexsem.weights == "llr"
            idf = None if learned else corpus_idf(collection, tokenizer)
            dimension = data.document_vectors.shape[1]
            bridge = LexSemBridge(
                options.lexsem,
                len(tokenizer),
                dimension,
                idf=idf,
                hidden_size=hidden_size_of(encoder) if learned else None,
                token_embeddings=token_embeddings_of(encoder, len(tokenizer), dimension),
            )
            tokens = read_query_tokens(data.queries, tokenizer, encoder=encoder, hidden=learned)
            report = train_lexsem(
                data.query_vectors,
                tokens,
                data.pairs,
                data.document_vectors,
                bridge,
                options.training,
            )
            adapter_obj = bridge
    summary = {
        "kind": options.kind,
        "dataset": str(dataset),
        "split": options.split,
        "skipped_judgements": data.skipped_judgements,
        **asdict(report),
    }
    card = {"trained": {k: summary[k] for k in ("dataset", "split", "pairs", "seconds")}}
    if out is not None:
        save_adapter(
            adapter_obj, out, encoder_fingerprint=fingerprint, info=card, tokenizer=tokenizer
        )
        summary["saved_to"] = str(out)
    if attach:
        record = attach_adapter(directory, adapter_obj, info=card, tokenizer=tokenizer)
        summary["stored_in"] = f"{directory}/{record.folder}"
    return summary


def corpus_idf(collection: StoredCollection, tokenizer: Any, batch: int = 1000) -> np.ndarray:
    """IDF of every vocabulary entry over the collection's live documents."""
    ids: list[np.ndarray] = []
    texts: list[str] = []
    for document in collection.documents.iter_documents():
        texts.append(document.content)
        if len(texts) == batch:
            ids.extend(read_query_tokens(texts, tokenizer).ids)
            texts = []
    if texts:
        ids.extend(read_query_tokens(texts, tokenizer).ids)
    return document_frequency_idf(ids, len(tokenizer))


def adapt_binary_codes(
    dataset: str | Path | None,
    directory: str | Path,
    options: AdaptOptions,
    query_vectors: str | Path | None = None,
) -> dict[str, Any]:
    """Give the collection learned binary codes: ITQ on its own vectors without ``dataset``;
    with it, a head trained on the split's queries (see :mod:`densekit.adapt.binary_codes`),
    starting from the collection's learned head when it has one of that size. The collection
    is then reindexed with the head (a learned binary index, rescored ``options.binary.rescore``
    deep unless it had a learned index already). Returns the training report."""
    from densekit.index.codes import learned_bits, truncated
    from densekit.index.learned_binary import head_of, itq_head
    from densekit.index.spec import IndexSpec, parse_spec
    from densekit.store.reindexing import reindex_collection

    wanted = options.binary
    with StoredCollection(directory) as collection:
        dense = collection.manifest.dense
        if dense is None or collection.manifest.encoder is None:
            raise InputError(
                f"{directory}: learned binary codes code dense vectors, and this collection has "
                "none; rebuild it with --retriever dense or hybrid"
            )
        current = parse_spec(dense.index)
        if current.is_learned_binary:
            spec = current
        else:
            spec = IndexSpec(base="binary", options={"learned": 1}, rescore=wanted.rescore or None)
        if wanted.bits:
            spec = dataclasses.replace(spec, options={**spec.options, "bits": wanted.bits})
        vectors, _ = collection.dense_vectors()
        bits = learned_bits(spec, spec.dim or vectors.dimension, vectors.rows)
        spec = dataclasses.replace(spec, options={**spec.options, "bits": bits})
        adapter = collection.manifest.adapter
        if adapter is not None and adapter.maps_documents:
            raise InputError(
                f"{directory}: its adapter maps documents, which needs the exact index; remove "
                "it first (densekit adapt --collection DIR --remove)"
            )
        if dataset is None:
            trained, report = None, {"kind": "binary", "bits": bits, "trained_on": "itq"}
        else:
            data = training_set(dataset, collection, options.split, query_vectors)
            documents = truncated(data.document_vectors, spec.dim)
            held = collection.dense_index
            if current.is_learned_binary and held.codes.code_dimension == bits:
                start = head_of(held.codes.index)
            else:
                start = itq_head(truncated(vectors.sample(100_000), spec.dim), bits)
            # Searches code the queries a stored query-side adapter has mapped: so does training.
            queries = data.query_vectors
            if collection.adapter is not None:
                queries = collection.adapter.queries(data.queries, queries, collection.encoder)
            trained, result = train_binary_head(
                start,
                truncated(queries, spec.dim),
                documents,
                options.training,
                data.pairs,
                wanted.contrastive,
            )
            report = {
                "kind": "binary",
                "dataset": str(dataset),
                "split": options.split,
                "skipped_judgements": data.skipped_judgements,
                **asdict(result),
            }
    manifest = reindex_collection(directory, spec, head=trained)
    assert manifest.dense is not None
    return {**report, "index": manifest.dense.index, "stored_in": str(directory)}
