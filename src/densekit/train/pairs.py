"""Training examples for bi-encoders: (query, positive, hard negatives) from BEIR judgements.

Positives are the judged-relevant documents of a split. Hard negatives come from a collection
of the same corpus: a rank window of each retriever (ranks ``first``-``last``; KaLM-Embedding
samples 50-100 of the previous model), known positives never, and, with a relative margin,
never a document the collection's dense model scores within ``margin`` of the positive (likely
an unjudged relevant one, as in NV-Retriever's positive-aware mining).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from densekit.corpus.readers import json_records, read_corpus
from densekit.errors import InputError
from densekit.evaluate.beir import BeirDataset, load_beir
from densekit.files.durability import atomic_write_text
from densekit.retrieve.collection import Collection
from densekit.train.mining import MiningConfig, mine_filtered
from densekit.train.result import TrainResult


@dataclass(frozen=True)
class Example:
    query: str
    positive: str
    negatives: tuple[str, ...] = ()
    # Where the texts come from, when known (a triplets file may carry texts alone).
    query_id: str | None = None
    positive_id: str | None = None
    negative_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "query_id": self.query_id,
            "query": self.query,
            "positive_id": self.positive_id,
            "positive": self.positive,
            "negative_ids": list(self.negative_ids),
            "negatives": list(self.negatives),
        }


@dataclass(frozen=True)
class Examples:
    rows: list[Example]
    queries: int  # trained on
    skipped_queries: int  # judged, but no positive in the split
    dropped_negatives: int  # mined, but left out as likely relevant (margin, cross-encoder)
    dev: dict[str, list[str]]  # held-out query id -> its relevant documents
    dev_queries: dict[str, str]  # held-out query id -> its text
    texts: dict[str, str]  # the corpus, by document id

    @property
    def negatives_per_row(self) -> int:
        """Negative columns: the most any row has (rows with fewer repeat theirs)."""
        return max((len(row.negatives) for row in self.rows), default=0)

    def columns(self, negatives: int) -> dict[str, list[str]]:
        """anchor, positive, negative_1..n columns for sentence-transformers' trainer."""
        columns: dict[str, list[str]] = {"anchor": [], "positive": []}
        columns |= {f"negative_{i}": [] for i in range(1, negatives + 1)}
        for row in self.rows:
            columns["anchor"].append(row.query)
            columns["positive"].append(row.positive)
            for i in range(negatives):
                columns[f"negative_{i + 1}"].append(row.negatives[i % len(row.negatives)])
        return columns


def corpus_texts(data: BeirDataset) -> dict[str, str]:
    if data.corpus_path is None:
        raise InputError(f"{data.root}: no corpus.jsonl; training needs the documents' texts")
    return {document.id: document.content for document in read_corpus(data.corpus_path)}


def judged_positives(data: BeirDataset, texts: Mapping[str, str]) -> dict[str, list[str]]:
    """Relevant documents per query; unknown document ids are refused, naming a few."""
    unknown = sorted({doc for judged in data.qrels.values() for doc in judged if doc not in texts})
    if unknown:
        raise InputError(
            f"{data.root}/qrels/{data.split}.tsv: {len(unknown)} judged documents are not in "
            f"{data.corpus_path} (e.g. {', '.join(unknown[:3])}); fix the qrels or the corpus"
        )
    return {
        query_id: sorted(doc for doc, grade in judged.items() if grade > 0)
        for query_id, judged in data.qrels.items()
        if query_id in data.queries
    }


def training_examples(
    data: BeirDataset,
    recipe: MiningConfig,
    *,
    collection: Collection | None = None,
    dev_share: float = 0.0,
    seed: int = 0,
) -> Examples:
    """One row per (query, positive) of the training queries, each with ``recipe.negatives``
    mined negatives; a ``dev_share`` of the queries is held out."""
    texts = corpus_texts(data)
    judged = judged_positives(data, texts)
    skipped = sum(1 for docs in judged.values() if not docs)
    judged = {query: docs for query, docs in judged.items() if docs}
    if not judged:
        raise InputError(f"{data.root}: no {data.split} query has a relevant document")
    train, dev = split_dev(judged, dev_share, seed)
    positives = {query: docs for query, docs in judged.items() if query in train}
    negatives: dict[str, list[str]] = {query: [] for query in positives}
    dropped = 0
    if recipe.negatives:
        if collection is None:
            raise InputError(
                "mined negatives need a collection of the dataset's corpus: pass --collection "
                "DIR, or set negatives = 0 in the recipe's [data] table"
            )
        queries = {query: data.queries[query] for query in positives}
        negatives, dropped = mine_filtered(collection, queries, positives, texts, recipe, seed)
    rows = [
        Example(
            data.queries[query],
            texts[doc],
            tuple(texts[n] for n in negatives[query]),
            query_id=query,
            positive_id=doc,
            negative_ids=tuple(negatives[query]),
        )
        for query, docs in positives.items()
        for doc in docs
        if not recipe.negatives or negatives[query]
    ]
    return Examples(
        rows,
        len(positives),
        skipped,
        dropped,
        dev={q: judged[q] for q in sorted(dev)},
        dev_queries={q: data.queries[q] for q in sorted(dev)},
        texts=texts,
    )


def split_dev(
    positives: Mapping[str, list[str]], share: float, seed: int
) -> tuple[set[str], set[str]]:
    """Query ids for training and for dev, the dev share drawn reproducibly."""
    order = sorted(positives)
    np.random.default_rng(seed).shuffle(order)
    dev = set(order[: int(len(order) * share)]) if len(order) > 1 else set()
    return set(order) - dev, dev


@dataclass(frozen=True)
class MinedTriplets(TrainResult):
    """A triplets file written by :func:`mine_triplets` (``out``) and what it holds."""

    rows: int
    queries: int
    dropped_negatives: int

    def summary(self) -> list[str]:
        return [
            f"wrote {self.out}: {self.rows} rows for {self.queries} queries, "
            f"{self.dropped_negatives} negatives dropped as likely relevant"
        ]


def mine_triplets(
    dataset: str | Path | BeirDataset,
    collection: str | Path | Collection,
    out: str | Path,
    mining: MiningConfig | None = None,
    *,
    split: str = "train",
    seed: int = 0,
    overwrite: bool = False,
) -> MinedTriplets:
    """Training rows of ``split`` of ``dataset`` with negatives mined from ``collection`` by
    ``mining``, written to the JSONL file ``out`` (what `densekit train --triplets` reads)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise InputError(f"{out}: exists; pass --overwrite to replace it")
    data = dataset if isinstance(dataset, BeirDataset) else load_beir(dataset, split)
    opened = collection if isinstance(collection, Collection) else Collection(collection)
    try:
        examples = training_examples(data, mining or MiningConfig(), collection=opened, seed=seed)
    finally:
        if opened is not collection:
            opened.close()
    write_triplets(examples, out)
    return MinedTriplets(str(out), len(examples.rows), examples.queries, examples.dropped_negatives)


def write_triplets(examples: Examples, path: Path) -> None:
    """One JSON object per line: query, positive and negatives, with their ids."""
    lines = (json.dumps(row.to_json(), ensure_ascii=False) for row in examples.rows)
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_triplets(path: Path) -> Examples:
    """Rows of a pairs/triplets JSONL file: ``query`` (or ``anchor``), ``positive``, and
    optionally ``negatives`` (a list) or ``negative`` (one text)."""
    rows = []
    for where, record in json_records(path):
        query = record.get("query", record.get("anchor"))
        positive = record.get("positive")
        negatives = record.get("negatives", [record["negative"]] if "negative" in record else [])
        if not isinstance(query, str) or not query.strip():
            raise InputError(f"{where}: needs a non-empty string field query (or anchor)")
        if not isinstance(positive, str) or not positive.strip():
            raise InputError(f"{where}: needs a non-empty string field positive")
        if not isinstance(negatives, list) or not all(isinstance(n, str) for n in negatives):
            raise InputError(f"{where}: negatives must be a list of strings")
        rows.append(
            Example(
                query,
                positive,
                tuple(negatives),
                query_id=record.get("query_id"),
                positive_id=record.get("positive_id"),
                negative_ids=tuple(record.get("negative_ids") or ()),
            )
        )
    if not rows:
        raise InputError(f"{path}: no training rows")
    counts = {len(row.negatives) for row in rows}
    if len(counts) > 1 and 0 in counts:
        line = next(i for i, row in enumerate(rows, 1) if not row.negatives)
        raise InputError(
            f"{path}:{line}: a row without negatives among rows with them; give every row "
            "negatives, or none"
        )
    queries = len({row.query for row in rows})
    return Examples(rows, queries, 0, 0, dev={}, dev_queries={}, texts={})
