"""Choose a collection's hybrid fusion by cross-validation on judgements (`densekit tune`).

Each judged query is searched once by the dense and the BM25 retriever, as deep as the deepest
setting needs; every candidate fusion then fuses those lists, cut to its own depth, in memory.
Per-query scores come from :func:`densekit.evaluate.compute_metrics` (trec_eval semantics). The
setting chosen on all the split's queries becomes the collection's default search, with a record
of the data, the cross-validated score and its spread (:class:`FusionTuningInfo`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from densekit.errors import InputError
from densekit.evaluate.beir import BeirDataset, Qrels, load_beir
from densekit.evaluate.cross_validation import best_candidate, cross_validate, query_folds
from densekit.evaluate.metrics import compute_metrics, parse_metrics, run_depth
from densekit.evaluate.runfile import ranked_hits
from densekit.retrieve.collection import Collection
from densekit.retrieve.fusion import DEFAULT_FUSION, HYBRID_LISTS, NORMALIZATIONS, FusionConfig
from densekit.retrieve.ranking import Ranking
from densekit.retrieve.retrievers import open_retriever
from densekit.store.fusion_default import check_fusable, store_tuned_fusion
from densekit.store.manifest import FusionTuningInfo
from densekit.version import __version__

# The settings tuning chooses among, in one place: a new fusion method adds its own here.
CONVEX_ALPHAS = tuple(round(0.1 * step, 1) for step in range(11))  # the dense list's weight
RRF_KS = (10, 30, 60, 100)
# A calibrated fusion's fixed BM25 weights (dense: 1), besides the default's per-query one.
CALIBRATED_BM25_WEIGHTS = (4.0, 8.0, 16.0, 32.0, 64.0)
# Candidates each list gives before fusing; the default's first, so a tie keeps it. None below
# 100: a search of the top k takes max(k, depth) from each list, so a shallower setting would
# search differently at eval's k = 100 than it was scored.
DEPTHS = (100, 200)


def fusion_grid() -> tuple[FusionConfig, ...]:
    convex = [
        FusionConfig(
            "convex", weights=(alpha, round(1.0 - alpha, 1)), depth=depth, normalization=norm
        )
        for norm in NORMALIZATIONS
        for depth in DEPTHS
        for alpha in CONVEX_ALPHAS
    ]
    rrf = [FusionConfig("rrf", k=k, depth=depth) for depth in DEPTHS for k in RRF_KS]
    calibrated = [  # the default (BM25 weighed per query), and fixed BM25 weights
        FusionConfig("calibrated", weights=None if bm25 is None else (1.0, bm25), depth=depth)
        for depth in DEPTHS
        for bm25 in (None, *CALIBRATED_BM25_WEIGHTS)
    ]
    return (*calibrated, *convex, *rrf)


FUSION_GRID = fusion_grid()

# Fewer judged queries than this make a choice among dozens of settings mostly noise.
MIN_QUERIES = 20
MIN_QUERIES_PER_FOLD = 4
_BATCH = 256  # queries per retrieval call, for progress


@dataclass(frozen=True)
class FoldChoice:
    fold: int
    queries: int
    fusion: FusionConfig  # chosen on the other folds' queries
    train_score: float
    held_out_score: float


@dataclass(frozen=True)
class FusionTuning:
    """What :func:`tune_fusion` chose and measured; ``stored``: whether it became the
    collection's default."""

    fusion: FusionConfig
    score: float  # on every query of the split (in-sample)
    cv_mean: float  # held-out folds, each fold's choice made on the others
    cv_std: float
    folds: tuple[FoldChoice, ...]
    previous: FusionConfig
    previous_score: float
    parts: dict[str, float]  # dense and bm25 alone
    dataset: str
    dataset_path: str
    split: str
    qrels_sha256: str
    metric: str
    queries: int
    seed: int
    candidates: int
    created: str = ""
    stored: bool = False
    warnings: tuple[str, ...] = ()

    def record(self) -> FusionTuningInfo:
        """The manifest's record of this tuning."""
        return FusionTuningInfo(
            dataset=self.dataset,
            dataset_path=self.dataset_path,
            split=self.split,
            qrels_sha256=self.qrels_sha256,
            metric=self.metric,
            queries=self.queries,
            folds=len(self.folds),
            seed=self.seed,
            candidates=self.candidates,
            cv_mean=_round(self.cv_mean),
            cv_std=_round(self.cv_std),
            score=_round(self.score),
            previous=self.previous.to_dict(),
            previous_score=_round(self.previous_score),
            fold_choices=[
                {
                    "fold": fold.fold,
                    "queries": fold.queries,
                    "fusion": fold.fusion.to_dict(),
                    "train_score": _round(fold.train_score),
                    "held_out_score": _round(fold.held_out_score),
                }
                for fold in self.folds
            ],
            parts={name: _round(value) for name, value in self.parts.items()},
            version=__version__,
            created=self.created,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fusion": self.fusion.to_dict(),
            **asdict(self.record()),
            "stored": self.stored,
            "warnings": list(self.warnings),
        }


def _round(value: float) -> float:
    return round(float(value), 6)


def tune_fusion(
    dataset: str | Path | BeirDataset,
    collection: str | Path | Collection,
    *,
    split: str = "train",
    metric: str = "nDCG@10",
    folds: int = 5,
    seed: int = 0,
    grid: Sequence[FusionConfig] = FUSION_GRID,
    store: bool = True,
    progress: bool = False,
) -> FusionTuning:
    """Choose the fusion of ``collection``'s dense and BM25 lists that scores best on the
    judged queries of ``dataset``'s ``split``, and (``store``) make it the collection's default.

    ``folds``-fold cross-validation (queries shuffled by ``seed``) reports how well choosing
    this way does on queries it has not seen. Ties go to the collection's current fusion, then
    to :data:`DEFAULT_FUSION`, then to the order of ``grid``. Each setting's lists are cut as a
    search of the metric's cutoff cuts them (to max(cutoff, depth); nDCG@10: a search of the top
    10), and the fused ranking is scored as :func:`evaluate` scores a run.
    A ``Collection`` given open keeps its snapshot: open the directory again to search the new
    default.
    """
    name = _one_metric(metric)
    _check_settings(folds, seed, grid)
    data = dataset if isinstance(dataset, BeirDataset) else load_beir(dataset, split)
    with ExitStack() as stack:
        opened = (
            collection
            if isinstance(collection, Collection)
            else stack.enter_context(Collection(collection))
        )
        check_fusable(opened.directory, opened.manifest)
        warnings = [*data.warnings, *_check_judgements(data, set(opened.doc_ids), folds)]
        previous = FusionConfig.stored(opened.manifest.fusion)
        candidates = _candidates(previous, grid)
        cutoff, run = _cutoff(name), run_depth(parse_metrics(name))
        depth = max(cutoff, run, *(candidate.depth for candidate in candidates))
        query_ids = sorted(data.qrels)
        texts = [data.queries[query_id] for query_id in query_ids]
        lists = [_retrieve(opened, retriever, texts, depth, progress) for retriever in HYBRID_LISTS]
        ids = opened.row_ids
        judged = {query_id: data.qrels[query_id] for query_id in query_ids}

        def scores(rankings: Sequence[Ranking]) -> list[float]:
            return _per_query(judged, query_ids, rankings, ids, name)

        rows = [
            scores([_fused(candidate, pair, cutoff, run) for pair in zip(*lists, strict=True)])
            for candidate in tqdm(
                candidates, desc="scoring settings", unit="setting", disable=not progress
            )
        ]
        parts = {
            retriever: float(np.mean(scores([ranking.top(run) for ranking in ranked])))
            for retriever, ranked in zip(HYBRID_LISTS, lists, strict=True)
        }
        directory = opened.directory
    matrix = np.asarray(rows, dtype=np.float64)
    validation = cross_validate(matrix, query_folds(len(query_ids), folds, seed))
    best, score = best_candidate(matrix, range(len(query_ids)))
    tuning = FusionTuning(
        fusion=candidates[best],
        score=score,
        cv_mean=validation.mean,
        cv_std=validation.std,
        folds=tuple(
            FoldChoice(
                fold.fold,
                fold.queries,
                candidates[fold.choice],
                fold.train_score,
                fold.held_out_score,
            )
            for fold in validation.folds
        ),
        previous=previous,
        previous_score=best_candidate(matrix[:1], range(len(query_ids)))[1],
        parts=parts,
        dataset=data.name,
        dataset_path=str(data.root.resolve()),
        split=data.split,
        qrels_sha256=judgements_digest(data.qrels),
        metric=name,
        queries=len(query_ids),
        seed=seed,
        candidates=len(candidates),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        warnings=tuple(warnings),
    )
    if not store:
        return tuning
    store_tuned_fusion(directory, tuning.fusion.to_dict(), tuning.record())
    return dataclasses.replace(tuning, stored=True)


def _one_metric(metric: str) -> str:
    measures = parse_metrics(metric)  # names the one that is wrong
    if len(measures) != 1:
        raise InputError(
            f"tuning maximises one metric, got {len(measures)} ({metric}); give one, e.g. nDCG@10"
        )
    return str(measures[0])


def _check_settings(folds: int, seed: int, grid: Sequence[FusionConfig]) -> None:
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InputError(
            f"folds must be a whole number of at least 2, got {folds!r}: cross-validation "
            "chooses on the other folds and scores on the one held out"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a whole number, 0 or more, got {seed!r}")
    if not grid or not all(isinstance(candidate, FusionConfig) for candidate in grid):
        raise InputError("grid must hold at least one FusionConfig")


def _cutoff(metric: str) -> int:
    """How many results a search scored by ``metric`` asks for: its cutoff (nDCG@10: 10), or
    for a metric of the whole ranking, as many as an evaluation ranks."""
    (measure,) = parse_metrics(metric)
    if "cutoff" in measure.params and measure["cutoff"] is not None:
        return int(measure["cutoff"])
    return run_depth([measure])


def _check_judgements(data: BeirDataset, known: set[str], folds: int) -> list[str]:
    """Refuse judgements the collection cannot be scored on, or too few to choose by; warn of
    judged documents it does not hold."""
    where = data.qrels_path or data.root
    judged = sorted({doc for docs in data.qrels.values() for doc in docs})
    held = [doc for doc in judged if doc in known]
    if judged and not held:
        raise InputError(
            f"{where}: none of the {len(judged)} document ids judged in split {data.split!r} is "
            f"in the collection (e.g. {judged[0]!r}); tune with judgements of the corpus the "
            "collection was built from"
        )
    usable = sum(
        any(relevance > 0 and doc in known for doc, relevance in docs.items())
        for docs in data.qrels.values()
    )
    needed = max(MIN_QUERIES, MIN_QUERIES_PER_FOLD * folds)
    if usable < needed:
        raise InputError(
            f"{where}: split {data.split!r} has {usable} judged queries with a relevant document "
            f"in the collection; tuning needs at least {needed} ({MIN_QUERIES} at the fewest, and "
            f"{MIN_QUERIES_PER_FOLD} for each fold: --folds {folds} needs "
            f"{MIN_QUERIES_PER_FOLD * folds}); judge more queries or tune on a larger split"
        )
    missing = len(judged) - len(held)
    if not missing:
        return []
    example = next(doc for doc in judged if doc not in known)
    return [
        f"{where}: {missing} of the {len(judged)} judged documents are not in the collection "
        f"(e.g. {example!r}); they count as not retrieved"
    ]


def _candidates(previous: FusionConfig, grid: Sequence[FusionConfig]) -> list[FusionConfig]:
    """The settings to score, the ones to keep on a tie first: the current default, then the
    built-in one, then the grid; each once."""
    return list(dict.fromkeys([previous, DEFAULT_FUSION, *grid]))


def _retrieve(
    collection: Collection, retriever: str, texts: Sequence[str], depth: int, progress: bool
) -> list[Ranking]:
    """Each query's ranking by ``retriever``, opened as a search opens it (the collection's
    query encoder, adapter included)."""
    opened = open_retriever(collection.stored, retriever, lambda: collection.encoder)
    rankings: list[Ranking] = []
    with tqdm(
        total=len(texts), desc=f"retrieving ({retriever})", unit="query", disable=not progress
    ) as bar:
        for start in range(0, len(texts), _BATCH):
            batch = texts[start : start + _BATCH]
            rankings += opened.retrieve(batch, depth)
            bar.update(len(batch))
    return rankings


def _fused(fusion: FusionConfig, lists: Sequence[Ranking], k: int, run: int) -> Ranking:
    """A hybrid search of the top ``k`` with ``fusion``: each list cut to max(k, depth), as its
    candidate stage gives them, then fused; the first ``run`` for the metric, which orders
    score ties its own way (trec_eval's) as it does in an evaluation."""
    depth = max(k, fusion.depth)
    return fusion.fuse([ranking.top(depth) for ranking in lists]).top(run)


def _per_query(
    qrels: Qrels,
    query_ids: Sequence[str],
    rankings: Sequence[Ranking],
    ids: Sequence[str | None],
    metric: str,
) -> list[float]:
    run = {query: dict(hits) for query, hits in ranked_hits(query_ids, rankings, ids).items()}
    per_query = compute_metrics(qrels, run, [metric]).per_query
    return [per_query[query_id][metric] for query_id in query_ids]


def judgements_digest(qrels: Mapping[str, Mapping[str, int]]) -> str:
    """sha256 of the judgements as sorted ``query-id doc-id relevance`` lines: the same
    judgements digest the same, whatever file or order they came in."""
    lines = sorted(f"{q}\t{d}\t{r}\n" for q, docs in qrels.items() for d, r in docs.items())
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def refuse_tuned_split(collection: Collection, data: BeirDataset, retriever: str | None) -> None:
    """Refuse to score a collection's tuned fusion (``retriever`` None or hybrid, no fusion
    given) on the judgements it was tuned on: that score is in-sample, not an evaluation."""
    tuning = collection.manifest.fusion_tuning
    if (retriever or collection.manifest.retriever) != "hybrid" or tuning is None:
        return
    if tuning.qrels_sha256 != judgements_digest(data.qrels):
        return
    raise InputError(
        f"{collection.directory}: its default fusion was tuned on these judgements "
        f"({tuning.dataset}, split {tuning.split!r}, {tuning.queries} queries), so scoring it "
        "on them measures "
        "nothing new; evaluate another split (e.g. --split test), or an explicit setting: "
        "--retriever dense or bm25, --fusion/--alpha, or a --pipeline"
    )
