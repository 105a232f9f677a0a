"""How a collection is to be built: the options of `densekit index` and build_collection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from densekit.corpus.chunking import ChunkConfig
from densekit.corpus.readers import CorpusFormat, EmptyPolicy, FieldNames
from densekit.encode import DEFAULT_MODEL, Encoder, load_encoder
from densekit.encode.batching import DEFAULT_BATCH_TOKENS
from densekit.encode.cache import default_cache_dir
from densekit.errors import InputError
from densekit.files.shards import DEFAULT_ROWS_PER_SHARD, STORAGE_DTYPES
from densekit.index.languages import CJK_BIGRAMS, language_settings
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
from densekit.store.manifest import RETRIEVER_NAMES, RetrieverName


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
    # BM25's stemmer: a PyStemmer language, "none" to match words exactly, or "cjk-bigrams".
    bm25_stemmer: str = "english"
    # BM25's stop words: a bm25s list ("en", "de", "zh", ...) or "none".
    bm25_stopwords: str = "en"
    # A language code (densekit.index.languages) sets both of the above.
    bm25_language: str | None = None
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
    # A late-interaction (ColBERT) model adds every document's token vectors (multivector).
    multivector: str | None = None
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
        unstemmed = self.bm25_stemmer in (NO_STEMMER, CJK_BIGRAMS)
        return TermWeights(0.0 if unstemmed else exact, pairs)

    def __post_init__(self) -> None:
        if self.bm25_language is not None:
            language = language_settings(self.bm25_language)
            stemmer_ok = self.bm25_stemmer in (BuildOptions.bm25_stemmer, language.stemmer)
            stopwords_ok = self.bm25_stopwords in (BuildOptions.bm25_stopwords, language.stopwords)
            if not (stemmer_ok and stopwords_ok):
                raise InputError(
                    f"BM25 language {language.code!r} sets the stemmer and stop words itself; "
                    "give the language, or the stemmer (--stemmer), not both"
                )
            object.__setattr__(self, "bm25_language", language.code)
            object.__setattr__(self, "bm25_stemmer", language.stemmer)
            object.__setattr__(self, "bm25_stopwords", language.stopwords)
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
        if self.retriever == "multivector" and self.multivector is None:
            raise InputError(
                "the multivector retriever searches token vectors; name their model with "
                "--multivector MODEL (multivector='...': a folder from densekit train --loss "
                "colbert, or a ColBERT checkpoint), or pick another retriever"
            )
        check_stemmer(self.bm25_stemmer)
        self.lexical_terms()  # weights out of range fail before any work
        given = self.bm25_exact_weight is not None or self.bm25_pair_weight is not None
        if given and self.retriever not in ("bm25", "hybrid"):
            raise InputError(
                "--exact-words and --word-pairs weigh BM25's terms; a "
                f"{self.retriever} collection has no BM25 (build with --retriever hybrid or bm25)"
            )
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
