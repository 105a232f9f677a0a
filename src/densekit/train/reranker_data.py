"""Training groups for a cross-encoder: each judged query with a positive and hard negatives.

Negatives are mined once (BM25 and dense windows, known positives skipped) into a shuffled pool
per query; epoch ``e`` takes the pool's ``e``-th slice, so every epoch sees fresh negatives and
the whole set is reproducible from the seed. A few queries are held out to check, after
training, that the model ranks their positives above their negatives.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from densekit.errors import InputError
from densekit.evaluate.beir import BeirDataset, load_beir
from densekit.retrieve.collection import Collection
from densekit.train.mining import MiningConfig, mine_filtered


@dataclass(frozen=True)
class Group:
    """One query's judged positives and its pool of mined negatives."""

    query: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]


@dataclass(frozen=True)
class TrainingGroups:
    train: list[Group]
    dev: list[Group]
    texts: dict[str, str]
    skipped_queries: int
    unknown_documents: int

    def rows(self, negatives: int, epochs: int) -> dict[str, list[str]]:
        """Columns (query, positive, negative_1..negative_n), one row per query and epoch."""
        columns: dict[str, list[str]] = {"query": [], "positive": []}
        columns |= {f"negative_{i}": [] for i in range(1, negatives + 1)}
        for epoch in range(epochs):
            for group in self.train:
                columns["query"].append(group.query)
                columns["positive"].append(
                    self.texts[group.positives[epoch % len(group.positives)]]
                )
                for i in range(negatives):
                    doc = group.negatives[(epoch * negatives + i) % len(group.negatives)]
                    columns[f"negative_{i + 1}"].append(self.texts[doc])
        return columns


def training_groups(
    data: BeirDataset,
    collection: Collection,
    *,
    negatives: int,
    epochs: int,
    mining: MiningConfig,
    dev_share: float,
    seed: int = 0,
) -> TrainingGroups:
    """Judged queries of ``data`` as groups; ``negatives * epochs`` mined per query when the
    collection has them (fewer are cycled)."""
    stored = set(collection.doc_ids)
    positives: dict[str, set[str]] = {}
    unknown = 0
    for query_id, judged in data.qrels.items():
        if query_id not in data.queries:
            continue
        relevant = {doc for doc, grade in judged.items() if grade > 0}
        unknown += len(relevant - stored)
        if relevant & stored:
            positives[query_id] = relevant & stored
    if not positives:
        raise InputError(
            f"{data.root}: no {data.split} query has a relevant document in "
            f"{collection.directory}; is the collection built from this dataset's corpus?"
        )
    queries = {query_id: data.queries[query_id] for query_id in sorted(positives)}
    judged = {query_id: sorted(positives[query_id]) for query_id in queries}
    wanted = replace(mining, negatives=negatives * epochs)
    stored_texts = _Texts(collection)
    mined, _ = mine_filtered(collection, queries, judged, stored_texts, wanted, seed)
    groups: dict[str, Group] = {}
    for query_id, text in queries.items():
        if not mined[query_id]:
            continue  # every retrieved document is judged relevant: nothing to contrast with
        groups[query_id] = Group(text, tuple(sorted(positives[query_id])), tuple(mined[query_id]))
    if not groups:
        raise InputError(
            f"{collection.directory}: the retrievers found no unjudged documents to use as "
            "negatives; raise the mining depth"
        )
    order = list(groups)
    np.random.default_rng(seed).shuffle(order)
    held_out = set(order[: int(len(order) * dev_share)])
    needed = {doc for group in groups.values() for doc in (*group.positives, *group.negatives)}
    texts = {doc: stored_texts[doc] for doc in sorted(needed)}
    return TrainingGroups(
        train=[groups[q] for q in groups if q not in held_out],
        dev=[groups[q] for q in groups if q in held_out],
        texts=texts,
        skipped_queries=len(data.queries) - len(groups),
        unknown_documents=unknown,
    )


class _Texts(Mapping[str, str]):
    """Stored documents' texts by id, read from the collection as they are asked for."""

    def __init__(self, collection: Collection) -> None:
        self.rows = collection.documents
        self.ids = collection.doc_ids

    def __getitem__(self, doc: str) -> str:
        found = self.rows.get(doc)
        if found is None:
            raise KeyError(doc)
        return found.content

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


class GroupSettings(Protocol):
    """What :func:`groups_for` reads from a training's settings."""

    negatives: int
    epochs: int
    mining: MiningConfig
    dev_share: float
    seed: int


def groups_for(
    dataset: str | Path | BeirDataset,
    collection: str | Path | Collection,
    split: str,
    settings: GroupSettings,
) -> tuple[BeirDataset, TrainingGroups]:
    """``split`` of ``dataset`` (read if a path) as :func:`training_groups` with ``settings``'
    negatives, epochs, mining, held-out share and seed, mined from ``collection``."""
    data = dataset if isinstance(dataset, BeirDataset) else load_beir(dataset, split)
    opened = collection if isinstance(collection, Collection) else Collection(collection)
    groups = training_groups(
        data,
        opened,
        negatives=settings.negatives,
        epochs=settings.epochs,
        mining=settings.mining,
        dev_share=settings.dev_share,
        seed=settings.seed,
    )
    return data, groups
