"""Retrieval pipelines: candidate stages, one fusion, rerank stages; from TOML or Python.

A pipeline file::

    [[candidates]]
    retriever = "dense"        # dense | bm25 | splade | multivector (the collection's own)
    k = 100                    # candidates this stage gives

    [[candidates]]
    retriever = "bm25"
    k = 100

    [fusion]                   # with two or more candidate stages (default: rrf, k = 60)
    method = "rrf"             # rrf | convex
    k = 60                     # rrf: the rank offset
    # weights = [0.4, 0.6]     # convex: one per candidate stage, on min-max normalised scores
    # depth = 100              # candidates a stage without its own k gives (at least)

    [[rerank]]
    model = "models/scifact-reranker"  # a CrossEncoder, or for kind = "llm" a causal LM
    kind = "cross-encoder"     # cross-encoder | llm (log p(query | passage); "smollm2" bundled)
                               # | mvp (a multi-view listwise model, densekit train-reranker
                               #   --kind mvp) | listwise (an instruction LLM ranks windows of
                               #   passages, RankGPT) | multivector (MaxSim over the
                               #   collection's token vectors; no model)
    top_n = 100                # rerank this many of the fused candidates
    batch = 32
    # views = 4                # mvp: the model's view count, checked when it loads
    # window = 20              # listwise: passages per window, and the step it slides by
    # step = 10                #   (default: half the window)

Every key is checked; a mistake is reported with the stage it is in (``candidates[2].k``).

Each ``--retriever`` name is a built-in pipeline (:func:`builtin_pipeline`): ``dense``, ``bm25``,
``splade`` and ``multivector`` are one candidate stage, ``hybrid`` fuses dense and BM25 with the
collection's fusion. Their stages set no ``k``: they give as many candidates as the search asks
for, and fused, at least the fusion's ``depth``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from densekit.errors import InputError
from densekit.retrieve.fusion import BM25_WEIGHT, DEFAULT_FUSION, HYBRID_LISTS, FusionConfig
from densekit.store.manifest import RETRIEVER_NAMES
from densekit.tomlfile import read_toml, refuse_unknown_keys

CANDIDATE_RETRIEVERS = ("dense", "bm25", "splade", "multivector")
RERANK_KINDS = ("cross-encoder", "llm", "mvp", "listwise", "multivector")
# Keys that only one kind reads.
KIND_KEYS = {"views": "mvp", "window": "listwise", "step": "listwise"}
# A multivector rerank reads the collection's own token vectors: it names no model.
TOKEN_VECTORS = "token vectors"


@dataclass(frozen=True)
class CandidateStage:
    """A first-stage retriever and how many candidates it gives (None: as many as the search
    asks for, and when fused, at least the fusion's depth)."""

    retriever: str
    k: int | None = 100

    def depth(self, k: int, fusion: FusionConfig | None) -> int:
        """Candidates this stage gives for a search of the top ``k``."""
        if self.k is not None:
            return self.k
        return max(k, fusion.depth) if fusion is not None else k


@dataclass(frozen=True)
class RerankStage:
    """A model that rescores the ``top_n`` best candidates of the stage before it."""

    model: str
    kind: str = "cross-encoder"
    top_n: int = 100
    batch: int = 32
    max_length: int | None = None
    # The reranker's share of the final score; the rest is the incoming score, both min-max
    # normalised per query. 1.0 orders by the reranker alone.
    weight: float = 1.0
    views: int | None = None  # mvp: the view count the model must have
    window: int | None = None  # listwise: passages per window (default 20)
    step: int | None = None  # listwise: how far the window slides (default half the window)

    @property
    def listwise_window(self) -> int:
        return self.window if self.window is not None else 20

    @property
    def listwise_step(self) -> int:
        # RankGPT's window 20 slides by 10: half the window unless set.
        return self.step if self.step is not None else max(1, self.listwise_window // 2)


@dataclass(frozen=True)
class Pipeline:
    candidates: tuple[CandidateStage, ...]
    fusion: FusionConfig | None = None
    rerank: tuple[RerankStage, ...] = field(default_factory=tuple)
    name: str = ""

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def fused(self) -> FusionConfig | None:
        """How the candidate lists combine; None for a single list."""
        if len(self.candidates) < 2:
            return None
        return self.fusion or FusionConfig("rrf")

    @classmethod
    def from_toml(cls, path: str | Path) -> Pipeline:
        path = Path(path)
        data = read_toml(path, "pipeline")
        return cls.from_dict(data, where=str(path), default_name=path.stem)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, where: str = "pipeline", default_name: str = ""
    ) -> Pipeline:
        refuse_unknown_keys(data, {"name", "candidates", "fusion", "rerank"}, where)
        candidates = [
            _stage(CandidateStage, entry, f"{where}: candidates[{i}]")
            for i, entry in enumerate(_tables(data, "candidates", where), 1)
        ]
        if not candidates:
            raise InputError(f'{where}: no [[candidates]] stage; add one, e.g. retriever = "dense"')
        fusion = None
        if "fusion" in data:
            if not isinstance(data["fusion"], Mapping):
                raise InputError(f"{where}: [fusion] must be a table")
            fusion = FusionConfig.from_dict(data["fusion"], source=where)
        rerank = [
            _stage(RerankStage, entry, f"{where}: rerank[{i}]")
            for i, entry in enumerate(_tables(data, "rerank", where), 1)
        ]
        try:
            return cls(
                tuple(candidates),
                fusion,
                tuple(rerank),
                str(data.get("name", default_name)),
            )
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        data["candidates"] = [asdict(stage) for stage in self.candidates]
        if self.fusion is not None:
            data["fusion"] = self.fusion.to_dict()
        data["rerank"] = [
            {
                k: v
                for k, v in asdict(stage).items()
                if v is not None and not (k == "model" and stage.kind == "multivector")
            }
            for stage in self.rerank
        ]
        return data

    def explain(self) -> str:
        """What the pipeline does, step by step, for `densekit pipeline show`."""
        lines = [f"pipeline {self.name or '(unnamed)'}:"]
        for i, stage in enumerate(self.candidates, 1):
            count = "k" if stage.k is None else stage.k
            lines.append(f"  {i}. {stage.retriever}: the top {count} documents")
        step = len(self.candidates)
        fusion = self.fused
        if fusion is not None:
            step += 1
            if fusion.method == "rrf":
                how = f"reciprocal rank fusion, sum of 1 / ({fusion.k} + rank)"
            else:
                names = [stage.retriever for stage in self.candidates]
                weights = fusion.weights_for(len(self.candidates), names)
                parts = ", ".join(
                    f"{_weight_text(fusion, name, w)} × {name}"
                    for w, name in zip(weights, names, strict=True)
                )
                if fusion.method == "calibrated":
                    how = f"sum of scores calibrated per query: {parts}"
                else:
                    how = f"convex sum of {fusion.normalization} normalised scores: {parts}"
            lines.append(f"  {step}. fuse the {len(self.candidates)} lists by {how}")
        for stage in self.rerank:
            step += 1
            reads = (
                f"windows of {stage.listwise_window} sliding by {stage.listwise_step}"
                if stage.kind == "listwise"
                else f"batches of {stage.batch}"
            )
            line = (
                f"  {step}. rerank the top {stage.top_n} with {stage.kind} {stage.model!r} "
                f"({reads})"
            )
            if stage.weight < 1:
                line += (
                    f"; score = {stage.weight:g} × reranker + {1 - stage.weight:g} × incoming "
                    "score, each min-max normalised per query"
                )
            lines.append(line)
        return "\n".join(lines)


def _weight_text(fusion: FusionConfig, name: str, weight: float) -> str:
    """The list ``name``'s weight in words; a calibrated default's BM25 gets its weight per
    query."""
    if fusion.method == "calibrated" and fusion.weights is None and name == "bm25":
        return BM25_WEIGHT.describe()
    return f"{weight:g}"


def _validate(pipeline: Pipeline) -> None:
    seen: set[str] = set()
    for i, stage in enumerate(pipeline.candidates, 1):
        if stage.retriever not in CANDIDATE_RETRIEVERS:
            raise InputError(
                f"candidates[{i}]: unknown retriever {stage.retriever!r}; choose one of "
                f"{', '.join(CANDIDATE_RETRIEVERS)}"
            )
        if stage.retriever in seen:
            raise InputError(f"candidates[{i}]: {stage.retriever!r} is already a stage")
        seen.add(stage.retriever)
        if stage.k is not None:
            _at_least_one(stage.k, f"candidates[{i}].k")
    if pipeline.fusion is not None:
        pipeline.fusion.weights_for(len(pipeline.candidates))  # one weight per stage
    for i, stage in enumerate(pipeline.rerank, 1):
        if stage.kind not in RERANK_KINDS:
            raise InputError(
                f"rerank[{i}].kind: unknown {stage.kind!r}; choose one of {', '.join(RERANK_KINDS)}"
            )
        if not stage.model:
            raise InputError(f"rerank[{i}].model: no model given (a path or a hub name)")
        _at_least_one(stage.top_n, f"rerank[{i}].top_n")
        _at_least_one(stage.batch, f"rerank[{i}].batch")
        for key, kind in KIND_KEYS.items():
            value = getattr(stage, key)
            if value is None:
                continue
            if stage.kind != kind:
                raise InputError(f'rerank[{i}].{key}: only kind = "{kind}" reads it; drop it')
            _at_least_one(value, f"rerank[{i}].{key}")
        if stage.max_length is not None:
            if stage.kind == "mvp":
                raise InputError(
                    f"rerank[{i}].max_length: an mvp model reads the length it was trained "
                    "with; drop it"
                )
            _at_least_one(stage.max_length, f"rerank[{i}].max_length")
        if stage.kind == "listwise" and not 1 <= stage.listwise_step <= stage.listwise_window:
            raise InputError(
                f"rerank[{i}]: a listwise window of {stage.listwise_window} passages must be at "
                f"least 2 and slide by 1 to {stage.listwise_window}, got step "
                f"{stage.listwise_step}"
            )
        weight = stage.weight
        previous = pipeline.rerank[i - 2] if i > 1 else None
        if previous is not None and weight != 1 and stage.top_n > previous.top_n:
            raise InputError(
                f"rerank[{i}]: a blend (weight < 1) reads the incoming scores, which are real "
                f"only for rerank[{i - 1}]'s top {previous.top_n}; set top_n <= {previous.top_n}"
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise InputError(f"rerank[{i}].weight must be a number, got {weight!r}")
        if not (math.isfinite(weight) and 0 < weight <= 1):
            raise InputError(
                f"rerank[{i}].weight must be above 0 and at most 1 (the reranker's share of "
                f"the score), got {weight!r}"
            )


def _at_least_one(value: int, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{where} must be a whole number of at least 1, got {value!r}")


def _tables(data: Mapping[str, Any], key: str, where: str) -> Sequence[Mapping[str, Any]]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise InputError(f"{where}: {key} must be a list of tables ([[{key}]] in TOML)")
    return entries


def _stage(kind: type, entry: Mapping[str, Any], where: str) -> Any:
    fields = set(kind.__dataclass_fields__)
    refuse_unknown_keys(entry, fields, where)
    values = dict(entry)
    for name in ("retriever", "model", "kind"):
        if name in values and not isinstance(values[name], str):
            raise InputError(f"{where}.{name} must be a string, got {values[name]!r}")
    if "retriever" not in values and kind is CandidateStage:
        raise InputError(
            f"{where}: no retriever given; choose one of {', '.join(CANDIDATE_RETRIEVERS)}"
        )
    if kind is RerankStage and values.get("kind") == "multivector":
        if "model" in values:
            raise InputError(
                f"{where}.model: a multivector rerank uses the collection's token vectors and "
                "their model; drop model"
            )
        values["model"] = TOKEN_VECTORS
    if "model" not in values and kind is RerankStage:
        raise InputError(f"{where}: no model given (a CrossEncoder path or hub name)")
    return kind(**values)


def builtin_pipeline(retriever: str, fusion: FusionConfig | None = None) -> Pipeline:
    """The pipeline a ``--retriever`` name stands for; ``hybrid`` fuses dense and BM25 with
    ``fusion`` (default: :data:`DEFAULT_FUSION`)."""
    if retriever == "hybrid":
        stages = tuple(CandidateStage(name, None) for name in HYBRID_LISTS)
        return Pipeline(stages, fusion or DEFAULT_FUSION, name="hybrid")
    if retriever not in RETRIEVER_NAMES:
        names = ", ".join(RETRIEVER_NAMES)
        raise InputError(f"unknown retriever {retriever!r}; choose one of {names}")
    return Pipeline((CandidateStage(retriever, None),), name=retriever)
