"""densekit: dense text retrieval from raw files to a searched, evaluated collection."""

from densekit.corpus import ChunkConfig, CorpusReader, Document, FieldNames, read_corpus
from densekit.encode import DEFAULT_MODEL, REGISTRY, Encoder, ModelSpec, load_encoder, resolve_model
from densekit.errors import (
    CollectionError,
    DensekitError,
    InputError,
    MissingDependencyError,
    ModelMismatchError,
)
from densekit.evaluate import (
    EvalReport,
    FusionTuning,
    compute_metrics,
    evaluate,
    evaluate_run,
    load_beir,
    read_run,
    tune_fusion,
    write_run,
)
from densekit.retrieve import (
    CandidateStage,
    Collection,
    FusionConfig,
    Hit,
    Pipeline,
    Ranking,
    RerankStage,
    Retriever,
    Searcher,
    build_collection,
    open_collection,
)
from densekit.serve.client import Client, ServerError
from densekit.store import (
    BuildOptions,
    ChangeReport,
    CompactionReport,
    StoredCollection,
    compact_collection,
    update_collection,
)
from densekit.version import __version__

# densekit.open(directory).search("query", k=5). Not in __all__: a star import keeps Python's
# own open.
open = open_collection


__all__ = [
    "DEFAULT_MODEL",
    "REGISTRY",
    "BuildOptions",
    "CandidateStage",
    "ChangeReport",
    "ChunkConfig",
    "Client",
    "Collection",
    "CollectionError",
    "CompactionReport",
    "CorpusReader",
    "DensekitError",
    "Document",
    "Encoder",
    "EvalReport",
    "FieldNames",
    "FusionConfig",
    "FusionTuning",
    "Hit",
    "InputError",
    "MissingDependencyError",
    "ModelMismatchError",
    "ModelSpec",
    "Pipeline",
    "Ranking",
    "RerankStage",
    "Retriever",
    "Searcher",
    "ServerError",
    "StoredCollection",
    "__version__",
    "build_collection",
    "compact_collection",
    "compute_metrics",
    "evaluate",
    "evaluate_run",
    "load_beir",
    "load_encoder",
    "open_collection",
    "read_corpus",
    "read_run",
    "resolve_model",
    "tune_fusion",
    "update_collection",
    "write_run",
]
