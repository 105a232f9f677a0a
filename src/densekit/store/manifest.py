"""The manifest: the one file that makes a collection visible, written by atomic rename.

Everything a collection holds lives in a generation directory (``gen-…``) named by the manifest.
A build writes a fresh generation, then replaces ``manifest.json`` in one ``os.replace``: a
reader sees the old collection or the new one, never a half-written mix.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from densekit.encode.registry import REGISTRY, ModelSpec
from densekit.errors import CollectionError
from densekit.files.durability import atomic_write_text
from densekit.index.lexical import TermWeights
from densekit.store.manifest_checks import (
    check_inside,
    check_paths,
    check_text,
    check_types,
    named_paths,
)

if TYPE_CHECKING:
    from densekit.encode.base import Encoder

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "densekit-collection"
FORMAT_VERSION = 1
# Version 2 adds a stored adapter; a collection without one stays version 1, readable by
# releases that predate adapters (which would search a version 2 one without its adapter).
ADAPTER_FORMAT_VERSION = 2
# Version 3 adds the record of a tuned fusion (`densekit tune`): releases before it refuse the
# collection by its version, instead of by an unknown field.
TUNED_FORMAT_VERSION = 3
# Version 4 adds token vectors for multi-vector (late interaction) search.
MULTIVECTOR_FORMAT_VERSION = 4
READABLE_VERSIONS = (
    FORMAT_VERSION,
    ADAPTER_FORMAT_VERSION,
    TUNED_FORMAT_VERSION,
    MULTIVECTOR_FORMAT_VERSION,
)


@dataclass(frozen=True)
class EncoderInfo:
    """Which model encoded the collection, and how; queries must be encoded the same way."""

    name: str
    location: str
    fingerprint: str
    dimension: int
    max_tokens: int
    query_prompt: str = ""
    document_prompt: str = ""
    normalize: bool = True
    backend: str = "sentence-transformers"
    layers: int | None = None
    dim: int | None = None

    @classmethod
    def of(cls, encoder: Encoder) -> EncoderInfo:
        spec = encoder.spec
        return cls(
            name=spec.name,
            location=spec.location,
            fingerprint=encoder.fingerprint,
            dimension=encoder.dimension,
            max_tokens=encoder.max_tokens,
            query_prompt=spec.query_prompt,
            document_prompt=spec.document_prompt,
            normalize=spec.normalize,
            backend=spec.backend,
            layers=spec.layers,
            dim=spec.dim,
        )

    def model_spec(self) -> ModelSpec:
        """How to load the model again; registry names are located afresh, so a collection
        built in one environment opens in another (the fingerprint still has to match)."""
        entry = REGISTRY.get(self.name)
        return ModelSpec(
            name=self.name,
            location=entry.locate() if entry is not None else self.location,
            query_prompt=self.query_prompt,
            document_prompt=self.document_prompt,
            normalize=self.normalize,
            backend=self.backend,
            layers=self.layers,
            dim=self.dim,
        )


@dataclass(frozen=True)
class DenseInfo:
    index: str
    shards: list[str]
    rows: int
    passage_offsets: str | None = None
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    # An approximate index (any spec but flat): its file, and a digest that ties it to this build.
    index_file: str | None = None
    index_digest: str | None = None


@dataclass(frozen=True)
class LexicalInfo:
    directory: str
    k1: float
    b: float
    method: str = "lucene"
    stemmer: str = "english"
    stopwords: str = "en"
    backend: str = "bm25s"
    language: str | None = None  # the --language that chose stemmer and stop words, if any
    # densekit.index.lexical.TermWeights: 0 and 0 (classic BM25) in manifests written before.
    exact_weight: float = 0.0
    pair_weight: float = 0.0

    @property
    def terms(self) -> TermWeights:
        return TermWeights(self.exact_weight, self.pair_weight)


@dataclass(frozen=True)
class SparseInfo:
    """A learned sparse (SPLADE) index and the model its queries must be encoded with."""

    directory: str
    name: str
    location: str
    fingerprint: str
    max_tokens: int


@dataclass(frozen=True)
class MultiVectorInfo:
    """Every document's token vectors (int8) with a FAISS index over them, and the
    late-interaction model whose query token vectors search them."""

    directory: str
    name: str
    location: str
    fingerprint: str
    dimension: int
    tokens: int  # token vectors stored, deleted documents' included
    token_index: str  # the token index's FAISS factory string


@dataclass(frozen=True)
class AdapterInfo:
    """A learned query (and maybe document) map that searches apply: its folder under
    ``adapters/``, what kind it is, and its files' sizes, checked when it is opened."""

    folder: str
    kind: str
    files: dict[str, int]
    maps_documents: bool = False


@dataclass(frozen=True)
class FusionTuningInfo:
    """How the default fusion was chosen by cross-validation on judgements (`densekit tune`):
    the data, the metric, the score and spread it reached, and what the default scored before.

    ``qrels_sha256`` digests the split's judgements (sorted query-id, doc-id, relevance lines),
    so an evaluation on the same judgements can be refused, whatever file holds them.
    """

    dataset: str  # the dataset folder's name
    dataset_path: str
    split: str
    qrels_sha256: str
    metric: str
    queries: int
    folds: int
    seed: int
    candidates: int  # fusion settings compared
    cv_mean: float  # the held-out folds' mean score, each fold's choice made on the others
    cv_std: float
    score: float  # the chosen setting on every query of the split (in-sample)
    previous: dict[str, Any]  # the fusion it replaced, and its score on the same queries
    previous_score: float
    fold_choices: list[dict[str, Any]]
    parts: dict[str, float]  # each retriever alone on the same queries
    version: str
    created: str


# What a collection can be searched with, by the indexes it holds: dense vectors, BM25, both
# (hybrid), a learned sparse index, token vectors (multivector). How a search combines them is
# retrieve's business.
RetrieverName = Literal["dense", "bm25", "hybrid", "splade", "multivector"]
RETRIEVER_NAMES: tuple[RetrieverName, ...] = ("dense", "bm25", "hybrid", "splade", "multivector")


@dataclass(frozen=True)
class Manifest:
    generation: str
    documents: int
    created: str
    source: str
    files: dict[str, int]
    retriever: str  # the default search: one of RETRIEVER_NAMES
    encoder: EncoderInfo | None = None
    dense: DenseInfo | None = None
    lexical: LexicalInfo | None = None
    sparse: SparseInfo | None = None
    multivector: MultiVectorInfo | None = None
    adapter: AdapterInfo | None = None
    # The default search's fusion, as densekit.retrieve.FusionConfig.to_dict writes it.
    fusion: dict[str, Any] = field(default_factory=dict)
    # How that fusion was chosen, when `densekit tune` chose it; None: set at build time.
    fusion_tuning: FusionTuningInfo | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    # Tombstones: document rows deleted since the last compaction, kept in the vector row
    # space (searches skip them) until `densekit compact` rewrites the collection.
    deleted: int = 0
    tombstones: str | None = None
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    @property
    def document_rows(self) -> int:
        """Rows of the document space: the live documents plus the tombstoned ones."""
        return self.documents + self.deleted

    @property
    def retrievers(self) -> list[str]:
        available = [name for name, part in (("dense", self.dense), ("bm25", self.lexical)) if part]
        if len(available) == 2:
            available.append("hybrid")
        if self.sparse:
            available.append("splade")
        return [*available, "multivector"] if self.multivector else available

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        sections = {
            "encoder": EncoderInfo,
            "dense": DenseInfo,
            "lexical": LexicalInfo,
            "sparse": SparseInfo,
            "multivector": MultiVectorInfo,
            "adapter": AdapterInfo,
            "fusion_tuning": FusionTuningInfo,
        }
        values = dict(data)
        for key, kind in sections.items():
            if values.get(key) is not None:
                values[key] = kind(**values[key])
        return cls(**values)


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Replace ``directory/manifest.json`` atomically and durably."""
    atomic_write_text(directory / MANIFEST_NAME, versioned(manifest).to_json())


def versioned(manifest: Manifest) -> Manifest:
    """``manifest`` with the oldest format version that can hold what it records."""
    version = FORMAT_VERSION
    if manifest.multivector is not None:
        version = MULTIVECTOR_FORMAT_VERSION
    elif manifest.fusion_tuning is not None:
        version = TUNED_FORMAT_VERSION
    elif manifest.adapter is not None:
        version = ADAPTER_FORMAT_VERSION
    return replace(manifest, format_version=version)


def read_manifest(directory: Path) -> Manifest:
    """Read and check a manifest; every way it can be missing or broken has its own message."""
    if not directory.exists():
        raise CollectionError(
            f"{directory}: no such collection; build one with: densekit index CORPUS --out "
            f"{directory}"
        )
    if not directory.is_dir():
        raise CollectionError(f"{directory}: not a directory, so not a collection")
    path = directory / MANIFEST_NAME
    if not path.exists():
        if (directory / "shards.json").is_file():
            raise CollectionError(
                f"{directory}: a sharded collection (shards.json names its shards); search, "
                "evaluate, serve and describe it as a whole, or work on one shard's folder: "
                "this command does not yet work across shards"
            )
        if any(directory.glob("gen-*")):
            raise CollectionError(
                f"{directory}: partial collection (no {MANIFEST_NAME}): a build was interrupted "
                "before it finished; rebuild with densekit index ... --overwrite"
            )
        raise CollectionError(f"{directory}: not a densekit collection (no {MANIFEST_NAME})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: arrays or objects nested thousands deep, which densekit never writes.
        raise CollectionError(
            f"{path}: corrupt manifest ({exc}); rebuild with densekit index ... --overwrite"
        ) from None
    return parse_manifest(data, path)


def parse_manifest(data: Any, path: Path) -> Manifest:
    """A manifest from its JSON ``data`` (read from ``path``, named in errors), checked."""
    check_text(data, path)
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        shown = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CollectionError(f"{path}: not a densekit manifest (format={shown!r})")
    if data.get("format_version") not in READABLE_VERSIONS:
        raise CollectionError(
            f"{path}: collection format version {data.get('format_version')} is not one "
            f"this densekit reads ({', '.join(map(str, READABLE_VERSIONS))}); open it with "
            "the densekit that wrote it, or rebuild the collection"
        )
    check_types(Manifest, data, path)
    manifest = Manifest.from_dict(data)
    check_paths(manifest, path)
    return manifest


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Check that every file the manifest names is there, inside the collection, with the size
    it recorded (sizes only, so opening stays fast: `densekit check` reads the bytes)."""
    for name, relative in named_paths(manifest):
        check_inside(directory, relative, name)
    if manifest.adapter is not None:
        for relative in manifest.adapter.files:
            check_inside(directory, f"{manifest.adapter.folder}/{relative}", "adapter.files")
    for relative, size in manifest.files.items():
        path = directory / relative
        if not path.is_file():
            raise CollectionError(
                f"{directory}: corrupt collection: {relative} is missing; "
                "rebuild with densekit index ... --overwrite"
            )
        actual = path.stat().st_size
        if actual != size:
            raise CollectionError(
                f"{directory}: corrupt collection: {relative} is {actual} bytes, the manifest "
                f"says {size}; rebuild with densekit index ... --overwrite"
            )
