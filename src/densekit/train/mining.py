"""Hard negatives mined from a collection: documents the retrievers rank high that the
judgements do not call relevant, less those a dense model or a cross-encoder finds too close to
the positive to be trusted as negatives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from densekit.errors import InputError
from densekit.retrieve.collection import Collection
from densekit.train.checks import whole


@dataclass(frozen=True)
class MiningConfig:
    """How hard negatives are mined: ``negatives`` per query from ranks ``first``-``last``
    (``ranks``) of each retriever, dropping likely-relevant ones.

    One config for every trainer and `densekit mine-negatives`; a recipe's ``[data]`` table
    holds these keys. Known positives are never negatives; skipping the very top ranks
    (KaLM-Embedding samples 50-100) lowers the chance of unjudged relevant documents posing as
    negatives, and so do ``margin`` (drop a negative the collection's dense model scores at
    least ``margin`` x the positive, as NV-Retriever does) and ``cross_encoder`` (drop one it
    scores as high as the positive).
    """

    negatives: int = 3  # per query (0: in-batch negatives only)
    ranks: tuple[int, int] = (10, 60)
    retrievers: tuple[str, ...] = ("bm25", "dense")
    margin: float | None = 0.95
    cross_encoder: str | None = None

    def __post_init__(self) -> None:
        whole(self.negatives, "data.negatives", minimum=0)
        if len(self.ranks) != 2:
            raise InputError(f"data.ranks must be [first, last], got {list(self.ranks)}")
        low, high = self.ranks
        whole(low, "data.ranks", minimum=1)
        if not isinstance(high, int) or high < low:
            raise InputError(
                f"data.ranks must be [first, last] with last >= first, got {self.ranks}"
            )
        if not self.retrievers or not all(isinstance(r, str) for r in self.retrievers):
            raise InputError(
                f"data.retrievers must name retrievers (bm25, dense, splade), got {self.retrievers}"
            )
        if self.cross_encoder is not None and (
            not isinstance(self.cross_encoder, str) or not self.cross_encoder
        ):
            raise InputError("data.cross_encoder must name a cross-encoder (a folder or hub name)")
        if self.margin is not None and not 0 < self.margin <= 1:
            raise InputError(f"data.margin must be in (0, 1], got {self.margin}")

    @classmethod
    def window(
        cls, *, depth: int, skip: int = 0, negatives: int = 3, **options: Any
    ) -> MiningConfig:
        """Ranks ``skip + 1`` to ``depth`` (the reranker's ``--depth`` and ``--skip``)."""
        if negatives < 1 or depth < 1 or not 0 <= skip < depth:
            raise InputError(
                "mining needs per_query >= 1 and 0 <= skip < depth, got "
                f"per_query={negatives}, skip={skip}, depth={depth}"
            )
        return cls(negatives=negatives, ranks=(skip + 1, depth), **options)

    @property
    def depth(self) -> int:
        return self.ranks[1]

    @property
    def skip(self) -> int:
        return self.ranks[0] - 1

    @property
    def filtered(self) -> bool:
        return self.margin is not None or self.cross_encoder is not None


def mine_negatives(
    collection: Collection,
    queries: Mapping[str, str],
    positives: Mapping[str, set[str]],
    config: MiningConfig | None = None,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Up to ``config.negatives`` document ids for each of ``queries``, from every retriever's
    rank window in turn (so each contributes), sampled reproducibly by ``seed``; no filter."""
    config = config or MiningConfig()
    missing = [name for name in config.retrievers if name not in collection.retrievers]
    if missing:
        raise InputError(
            f"{collection.directory} has no {missing[0]!r} retriever to mine negatives with "
            f"(it supports {', '.join(collection.retrievers)})"
        )
    query_ids = list(queries)
    texts = [queries[q] for q in query_ids]
    windows: list[list[list[str]]] = []
    ids = collection.row_ids
    for retriever in config.retrievers:
        rankings = collection.searcher(retriever).rank(texts, config.depth)
        windows.append(
            [[ids[row] for row in ranking.rows[config.skip :].tolist()] for ranking in rankings]
        )
    rng = np.random.default_rng(seed)
    mined: dict[str, list[str]] = {}
    for position, query_id in enumerate(query_ids):
        known = positives.get(query_id, set())
        pools = [_unique(w[position], known) for w in windows]
        shuffled = [[str(doc) for doc in rng.permutation(pool)] for pool in pools]
        mined[query_id] = _round_robin(shuffled, config.negatives)
    return mined


def mine_filtered(
    collection: Collection,
    queries: Mapping[str, str],
    positives: Mapping[str, Sequence[str]],
    texts: Mapping[str, str],
    config: MiningConfig,
    seed: int = 0,
) -> tuple[dict[str, list[str]], int]:
    """Up to ``config.negatives`` negatives per query, less those ``margin`` and
    ``cross_encoder`` find too close to a positive, and how many they dropped. ``texts`` holds
    (at least) the text of every document mined or judged."""
    # Twice what is needed, so the filters still leave enough.
    wanted = config.negatives * (2 if config.filtered else 1)
    known = {query: set(docs) for query, docs in positives.items()}
    mined = mine_negatives(collection, queries, known, replace(config, negatives=wanted), seed)
    dropped = 0
    if config.margin is not None:
        candidates = _Candidates(queries, positives, mined, texts)
        mined, dropped = candidates.drop_close(_dense_scores(collection, candidates), config.margin)
    if config.cross_encoder is not None:
        candidates = _Candidates(queries, positives, mined, texts)
        scores = _cross_encoder_scores(config.cross_encoder, candidates)
        mined, also = candidates.drop_close(scores, 1.0)
        dropped += also
    return {query: docs[: config.negatives] for query, docs in mined.items()}, dropped


Scores = dict[tuple[str, str], float]


@dataclass(frozen=True)
class _Candidates:
    """Each query's positives and mined negatives, and the texts to score them by."""

    queries: Mapping[str, str]
    positives: Mapping[str, Sequence[str]]
    mined: Mapping[str, list[str]]
    texts: Mapping[str, str]

    def pairs(self) -> list[tuple[str, str]]:
        """(query id, document id) of every positive and mined negative."""
        return [(q, d) for q in self.queries for d in (*self.positives[q], *self.mined[q])]

    def drop_close(self, scores: Scores, margin: float) -> tuple[dict[str, list[str]], int]:
        """Leave out negatives scoring at least ``margin`` x the best positive's score."""
        kept, dropped = {}, 0
        for query, docs in self.mined.items():
            ceiling = margin * max(scores[query, doc] for doc in self.positives[query])
            kept[query] = [doc for doc in docs if scores[query, doc] < ceiling]
            dropped += len(docs) - len(kept[query])
        return kept, dropped


def _dense_scores(collection: Collection, candidates: _Candidates) -> Scores:
    encoder = collection.encoder
    ids = list(candidates.queries)
    query_vectors = dict(
        zip(ids, encoder.encode_queries([candidates.queries[q] for q in ids]), strict=True)
    )
    pairs = candidates.pairs()
    documents = sorted({doc for _, doc in pairs})
    encoded = encoder.encode_documents([candidates.texts[d] for d in documents])
    vectors = dict(zip(documents, encoded, strict=True))
    return {(q, d): float(query_vectors[q] @ vectors[d]) for q, d in pairs}


def _cross_encoder_scores(model: str, candidates: _Candidates) -> Scores:
    """A cross-encoder's check (as in NV-Retriever and RocketQA's denoising): a negative it
    scores as high as the positive is more likely an unjudged relevant document."""
    from densekit.retrieve.rerankers import CrossEncoderReranker

    try:
        reranker = CrossEncoderReranker(model)
    except (OSError, ValueError) as exc:
        raise InputError(f"data.cross_encoder: could not load {model!r}: {exc}") from None
    pairs = candidates.pairs()
    texts = [(candidates.queries[q], candidates.texts[d]) for q, d in pairs]
    return dict(zip(pairs, reranker.score(texts).tolist(), strict=True))


def _unique(candidates: Sequence[str | None], known: set[str]) -> list[str]:
    return [doc for doc in dict.fromkeys(candidates) if doc is not None and doc not in known]


def _round_robin(pools: list[list[str]], count: int) -> list[str]:
    chosen: list[str] = []
    seen: set[str] = set()
    while len(chosen) < count and any(pools):
        for pool in pools:
            while pool:
                doc = pool.pop(0)
                if doc not in seen:
                    seen.add(doc)
                    chosen.append(doc)
                    break
            if len(chosen) == count:
                break
    return chosen
