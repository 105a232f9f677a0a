"""Request and response bodies of the HTTP API; their limits are part of the OpenAPI spec."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from densekit.corpus.filters import MAX_FILTER_CHARS
from densekit.files.ids import MAX_ID_CHARS
from densekit.serve.catalog import NAME_PATTERN

MAX_K = 1000
MAX_QUERIES = 64
MAX_QUERY_CHARS = 4096
MAX_INPUTS = 2048  # as the OpenAI embeddings API
MAX_TEXT_CHARS = 100_000  # one document or one embeddings input
MAX_DOCUMENTS = 1000  # per write request
MAX_METADATA_CHARS = 65_536
MAX_DEPTH = 16

CollectionName = Annotated[str, Field(pattern=NAME_PATTERN, description="a served collection")]
QueryText = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]
InputText = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
# Ids and texts need a character Python's str.strip keeps (blank ones are refused by the
# collection). Spelled out so every regex dialect (Python, Rust, ECMA) agrees on "blank".
NOT_BLANK = r"[^\s\x1c-\x1f\x85\ufeff]"
DocumentId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=NOT_BLANK)]
# The id rules for new documents (densekit.files.ids), as a pattern: no control characters or
# line separators, no whitespace at either end (Python's str.isspace, spelled out), not "." or
# "..". Stated in the spec only: the collection checks them itself, naming the field.
_END = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_END_NOT_DOT = _END.replace("[^", "[^.", 1)
_INSIDE = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
NEW_ID_PATTERN = (
    f"^(?:{_END_NOT_DOT}|{_END_NOT_DOT}{_END}|\\.{_END_NOT_DOT}|{_END}{_INSIDE}+{_END})$"
)
NewDocumentId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_CHARS, json_schema_extra={"pattern": NEW_ID_PATTERN}),
]
HitField = Literal["id", "score", "rank", "title", "text", "metadata"]
HIT_FIELDS: tuple[HitField, ...] = ("id", "score", "rank", "title", "text", "metadata")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(BaseModel):
    detail: str = Field(description="what was wrong and what to do")
    errno: str | None = Field(
        None, description="on a 503 or 507 from a write: the disk's error (ENOSPC, EROFS, ...)"
    )


class SearchRequest(Strict):
    # Optional fields are left out rather than sent as null, and the spec says which go
    # together, so generated clients and fuzzers know the rules the validator enforces.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["query"]}, {"required": ["queries"]}],
            "not": {"required": ["pipeline", "retriever"]},
        },
    )

    collection: CollectionName
    query: QueryText = Field(None, description="one query (or give `queries`)")  # type: ignore[assignment]
    queries: Annotated[list[QueryText], Field(min_length=1, max_length=MAX_QUERIES)] = Field(
        None,  # type: ignore[assignment]
        description="a batch of queries, answered in order",
    )
    k: int = Field(10, ge=1, le=MAX_K, description="results per query")
    retriever: Literal["dense", "bm25", "hybrid", "splade", "multivector"] = Field(
        None,  # type: ignore[assignment]
        description="one of the collection's retrievers (default: its own)",
    )
    pipeline: str | dict[str, Any] = Field(
        None,  # type: ignore[assignment]
        description="a pipeline served by name, or one inline (as its TOML, in JSON)",
    )
    filter: str = Field(
        None,  # type: ignore[assignment]
        min_length=1,
        max_length=MAX_FILTER_CHARS,
        description="search only the documents whose metadata match, e.g. "
        "\"year >= 2020 and topic in ('ml', 'ir')\" (the filter language of `densekit search "
        "--filter`)",
    )
    fields: list[HitField] = Field(None, description="hit fields to return (default: all)")  # type: ignore[assignment]
    explain: bool = Field(
        False, description="also give how each query's candidate lists were weighed"
    )
    highlight: bool = Field(
        False,
        description="also give, per hit, the spans of its title and text words that match a "
        "query term as the collection's BM25 analyser reads them (stemmed, without stop words)",
    )
    allow_partial: bool = Field(
        False,
        description="on a sharded collection served with shard actors, answer from the shards "
        "that answer when one is down (the response's `shards` says which); otherwise such a "
        "search fails with 503",
    )

    @model_validator(mode="after")
    def _one_of_query_or_queries(self) -> SearchRequest:
        if (self.query is None) == (self.queries is None):
            raise ValueError("give exactly one of `query` and `queries`")
        if self.pipeline is not None and self.retriever is not None:
            raise ValueError("give a `pipeline` or a `retriever`, not both")
        return self


Span = tuple[int, int]


class Highlights(BaseModel):
    """Character spans [start, end) of the words to mark, in the hit's title and text."""

    title: list[Span] = Field(default_factory=list)
    text: list[Span] = Field(default_factory=list)


class Hit(BaseModel):
    id: str | None = None
    score: float | None = None
    rank: int | None = None
    title: str | None = None
    text: str | None = None
    metadata: dict[str, Any] | None = None
    highlights: Highlights | None = None


class ListWeight(BaseModel):
    """What one candidate list counted for in a query's fusion (``explain``)."""

    retriever: str
    candidates: int
    weight: float | None = Field(description="the fusion's weight for the list (RRF: none)")
    share: float = Field(description="how much of the fused score the list could move")
    center: float | None = Field(description="calibration: scores - center, / spread")
    spread: float | None


class QueryResult(BaseModel):
    query: str
    hits: list[Hit]
    weights: list[ListWeight] | None = Field(
        None, description="with `explain`: each candidate list's weight and share"
    )


class ShardsAnswered(BaseModel):
    """Which shards of a sharded collection answered a search that allowed partial results."""

    answered: list[int]
    missing: list[int]


class SearchResponse(BaseModel):
    collection: str
    retriever: str
    results: list[QueryResult]
    took_ms: float
    shards: ShardsAnswered | None = Field(
        None, description="with allow_partial: the shards whose documents the results hold"
    )


class EmbeddingsRequest(BaseModel):
    """The OpenAI embeddings request; ``input_type`` is densekit's own, for models that embed
    queries and documents differently (other fields are accepted and ignored)."""

    model_config = ConfigDict(extra="ignore")

    input: InputText | Annotated[list[InputText], Field(min_length=1, max_length=MAX_INPUTS)]
    model: str = Field(min_length=1, max_length=512)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1, le=65536)
    user: str | None = None
    input_type: Literal["query", "document"] = "document"

    @field_validator("input", mode="before")
    @classmethod
    def _texts_not_token_ids(cls, value: Any) -> Any:
        # Token ids come from the client's tokenizer (LangChain's OpenAIEmbeddings sends
        # tiktoken's by default), not from the served model's: decoding them would embed
        # another text than the one meant.
        if isinstance(value, list) and any(isinstance(item, int | list) for item in value):
            raise ValueError(
                "input holds token ids; send the texts themselves: token ids from another "
                "tokenizer would be read as other words by this server's models (LangChain: "
                "OpenAIEmbeddings(..., check_embedding_ctx_length=False) sends texts)"
            )
        return value


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "densekit"
    dimensions: int = Field(description="the embedding width: the most `dimensions` can ask")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class DocumentIn(Strict):
    id: NewDocumentId
    text: str = Field(max_length=MAX_TEXT_CHARS, pattern=NOT_BLANK)
    title: str = Field("", max_length=MAX_TEXT_CHARS)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"any JSON object up to {MAX_METADATA_CHARS} characters, {MAX_DEPTH} levels",
    )

    @field_validator("metadata")
    @classmethod
    def _bounded(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        if _depth(metadata) > MAX_DEPTH:
            raise ValueError(f"metadata is nested deeper than {MAX_DEPTH} levels")
        if len(json.dumps(metadata)) > MAX_METADATA_CHARS:
            raise ValueError(f"metadata is longer than {MAX_METADATA_CHARS} characters as JSON")
        return metadata


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:  # stop early: the caller only needs to know it is too deep
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


class DocumentOut(BaseModel):
    id: str
    text: str
    title: str
    metadata: dict[str, Any]


class DocumentsWrite(Strict):
    documents: Annotated[list[DocumentIn], Field(min_length=1, max_length=MAX_DOCUMENTS)]
    mode: Literal["add", "update", "upsert"] = Field(
        "upsert", description="add: new ids only; update: existing ids only; upsert: either"
    )


class DocumentsDelete(Strict):
    ids: Annotated[list[DocumentId], Field(min_length=1, max_length=MAX_DOCUMENTS)]


class ChangeOut(BaseModel):
    added: int
    updated: int
    deleted: int
    documents: int
    tombstones: int
    seconds: float


class CollectionSummary(BaseModel):
    name: str
    documents: int
    retrievers: list[str]
    default_retriever: str
    model: str | None


class CollectionList(BaseModel):
    collections: list[CollectionSummary]
    pipelines: list[str]
    models: list[str]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    collections: int
