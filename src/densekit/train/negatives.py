"""Hard negatives mined from a collection: documents the retrievers rank high that the
judgements do not call relevant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from densekit.errors import InputError
from densekit.retrieve.searcher import Searcher
from densekit.store.collection import Collection


@dataclass(frozen=True)
class MiningConfig:
    """Negatives per query, drawn from ranks ``skip + 1`` to ``depth`` of each retriever.

    Known positives are never negatives; skipping the very top ranks (KaLM-Embedding samples
    ranks 50-100) lowers the chance of unjudged relevant documents posing as negatives.
    """

    per_query: int = 7
    depth: int = 30
    skip: int = 0
    retrievers: tuple[str, ...] = ("bm25", "dense")
    seed: int = 0

    def __post_init__(self) -> None:
        if self.per_query < 1 or self.depth < 1 or not 0 <= self.skip < self.depth:
            raise InputError(
                "mining needs per_query >= 1 and 0 <= skip < depth, got "
                f"per_query={self.per_query}, skip={self.skip}, depth={self.depth}"
            )


def mine_negatives(
    collection: Collection,
    queries: Mapping[str, str],
    positives: Mapping[str, set[str]],
    config: MiningConfig | None = None,
) -> dict[str, list[str]]:
    """Up to ``per_query`` negative document ids for each of ``queries``, from every retriever's
    rank window in turn (so each contributes), sampled reproducibly by ``seed``."""
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
        rankings = Searcher(collection, retriever).rank(texts, config.depth)
        windows.append(
            [[ids[row] for row in ranking.rows[config.skip :].tolist()] for ranking in rankings]
        )
    rng = np.random.default_rng(config.seed)
    mined: dict[str, list[str]] = {}
    for position, query_id in enumerate(query_ids):
        known = positives.get(query_id, set())
        pools = [_unique(w[position], known) for w in windows]
        shuffled = [[str(doc) for doc in rng.permutation(pool)] for pool in pools]
        mined[query_id] = _round_robin(shuffled, config.per_query)
    return mined


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
