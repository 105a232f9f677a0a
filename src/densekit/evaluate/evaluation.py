"""Evaluate a collection (or a model, building a temporary collection) on a BEIR dataset."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from densekit.corpus.filters import Filter
from densekit.encode import DEFAULT_MODEL
from densekit.errors import InputError
from densekit.evaluate.beir import BeirDataset, load_beir
from densekit.evaluate.metrics import DEFAULT_METRICS, compute_metrics, parse_metrics, run_depth
from densekit.evaluate.runfile import RankedHits, Run, ranked_hits, read_run, write_run
from densekit.evaluate.tuning import refuse_tuned_split
from densekit.retrieve.collection import Collection, build_collection
from densekit.retrieve.fusion import FusionConfig
from densekit.retrieve.pipeline import Pipeline
from densekit.store.build_options import BuildOptions
from densekit.store.manifest import RetrieverName


@dataclass
class EvalReport:
    dataset: str
    split: str
    retriever: str
    model: str | None
    queries: int
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(repr=False)
    run: RankedHits = field(repr=False)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    # A pipeline's stages: seconds, ms per query, passages scored per second.
    stages: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, *, per_query: bool = False) -> dict[str, Any]:
        data = asdict(self)
        del data["run"]
        if not per_query:
            del data["per_query"]
        return data


def evaluate(
    dataset: str | Path | BeirDataset,
    *,
    collection: str | Path | Collection | None = None,
    model: str | None = None,
    retriever: RetrieverName | None = None,
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    split: str = "test",
    fusion: FusionConfig | None = None,
    run_out: str | Path | None = None,
    build_options: BuildOptions | None = None,
    index_params: dict[str, int] | None = None,
    pipeline: Pipeline | None = None,
    query_vectors: str | Path | None = None,
    where: str | Filter | None = None,
) -> EvalReport:
    """Search every judged query of ``split`` and score the run against the qrels.

    With ``collection`` the queries run against it (``model``, if given, must be its model);
    without, the dataset's corpus is built into a temporary collection with ``model``.
    ``query_vectors`` (a file with a vector per query id, made by the collection's model) are
    searched instead of encoding the queries. ``where`` searches only the documents whose
    metadata match it (judged documents outside it count as missed).
    """
    started = time.perf_counter()
    data = dataset if isinstance(dataset, BeirDataset) else load_beir(dataset, split)
    measures = parse_metrics(metrics)
    if run_out is not None and not Path(run_out).resolve().parent.is_dir():
        raise InputError(f"{run_out}: its folder does not exist; create it or pick another path")
    with ExitStack() as stack:
        if build_options is None and collection is None and pipeline is not None:
            build_options = _options_for(pipeline, model)
        opened = _open_or_build(data, collection, model, retriever, build_options, stack)
        check_model = model if collection is not None else None  # a fresh build used it already
        if query_vectors is not None:
            from densekit.files.vectors import read_vectors

            if model is not None:
                raise InputError("query vectors replace the model; give one of them, not both")
            opened = opened.with_query_vectors(read_vectors(query_vectors), data.queries)
        elif check_model is not None:
            from densekit.encode import load_encoder

            # Checked even for BM25: naming the wrong model is always a mistake.
            opened = opened.with_encoder(load_encoder(check_model))
        if collection is not None and pipeline is None and fusion is None:
            refuse_tuned_split(opened, data, retriever)
        searcher = opened.searcher(
            retriever, fusion=fusion, pipeline=pipeline, index_params=index_params
        )
        query_ids = list(data.queries)
        rankings = searcher.rank([data.queries[q] for q in query_ids], run_depth(measures), where)
        run = ranked_hits(query_ids, rankings, opened.row_ids)
        warnings = [*data.warnings, *_unknown_documents(data, set(opened.doc_ids))]
        stages = []
        if pipeline is not None:
            warnings += searcher.runner.notes
            stages = [cost.to_dict() for cost in searcher.runner.costs]
        model_name = opened.manifest.encoder.name if opened.manifest.encoder else None
    if run_out is not None:
        write_run(run_out, run, tag=f"densekit-{searcher.name.replace(' ', '-')}")
    result = compute_metrics(
        data.qrels, {q: dict(hits) for q, hits in run.items()}, [str(m) for m in measures]
    )
    return EvalReport(
        dataset=data.name,
        split=data.split,
        retriever=searcher.name,
        model=model_name if searcher.uses_dense_model else None,
        queries=len(query_ids),
        metrics=result.aggregate,
        per_query=result.per_query,
        run=run,
        seconds=round(time.perf_counter() - started, 3),
        warnings=warnings,
        stages=stages,
    )


def evaluate_run(
    dataset: str | Path | BeirDataset,
    run: str | Path | Run,
    *,
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    split: str = "test",
) -> EvalReport:
    """Score an existing run (a TREC run file or a mapping) against a dataset's qrels."""
    started = time.perf_counter()
    data = dataset if isinstance(dataset, BeirDataset) else load_beir(dataset, split)
    scores = run if isinstance(run, dict) else read_run(run)
    result = compute_metrics(data.qrels, scores, metrics)
    warnings = list(data.warnings)
    unjudged = sorted(set(scores) - set(data.qrels))
    if unjudged:
        warnings.append(
            f"the run has {len(unjudged)} queries without judgements in split {data.split!r} "
            f"(e.g. {', '.join(unjudged[:3])}); they are not scored"
        )
    missing = len(set(data.qrels) - set(scores))
    if missing:
        warnings.append(f"{missing} judged queries have no results in the run; they score 0")
    ranked = {
        query_id: sorted(docs.items(), key=lambda item: item[1], reverse=True)
        for query_id, docs in scores.items()
    }
    return EvalReport(
        dataset=data.name,
        split=data.split,
        retriever="run",
        model=None,
        queries=len(data.qrels),
        metrics=result.aggregate,
        per_query=result.per_query,
        run=ranked,
        seconds=round(time.perf_counter() - started, 3),
        warnings=warnings,
    )


def _options_for(pipeline: Pipeline, model: str | None) -> BuildOptions:
    """What a temporary collection needs to run ``pipeline``."""
    from densekit.encode.sparse import DEFAULT_SPARSE_MODEL

    stages = {stage.retriever for stage in pipeline.candidates}
    if "multivector" in stages or any(stage.kind == "multivector" for stage in pipeline.rerank):
        raise _needs_token_vectors()
    dense, lexical = "dense" in stages, "bm25" in stages
    retriever: RetrieverName = "hybrid" if dense == lexical else ("dense" if dense else "bm25")
    return BuildOptions(
        model=model or DEFAULT_MODEL,
        retriever=retriever,
        sparse=DEFAULT_SPARSE_MODEL if "splade" in stages else None,
    )


def _open_or_build(
    data: BeirDataset,
    collection: str | Path | Collection | None,
    model: str | None,
    retriever: RetrieverName | None,
    build_options: BuildOptions | None,
    stack: ExitStack,
) -> Collection:
    if isinstance(collection, Collection):
        return collection
    if collection is not None:
        return stack.enter_context(Collection(collection))
    if retriever == "multivector" and build_options is None:
        raise _needs_token_vectors()
    options = build_options or BuildOptions(
        model=model or DEFAULT_MODEL, retriever=retriever or "hybrid"
    )
    if data.corpus_path is None:
        raise InputError(
            f"{data.root}: no corpus.jsonl to build a collection from; pass --collection"
        )
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="densekit-eval-")))
    built = build_collection(data.corpus_path, workdir / "collection", options)
    return stack.enter_context(built)


def _needs_token_vectors() -> InputError:
    return InputError(
        "multi-vector search needs a collection with token vectors, which takes a "
        "late-interaction model: build one with densekit index CORPUS --multivector MODEL "
        "--out DIR, and pass --collection DIR"
    )


def _unknown_documents(data: BeirDataset, known: set[str]) -> list[str]:
    judged = {doc for docs in data.qrels.values() for doc in docs}
    unknown = sorted(judged - known)
    if not unknown:
        return []
    pairs = sum(1 for docs in data.qrels.values() for doc in docs if doc not in known)
    return [
        f"qrels of split {data.split!r} name {len(unknown)} documents ({pairs} judgements) that "
        f"the collection does not hold (e.g. {', '.join(unknown[:3])}); they count as not retrieved"
    ]
