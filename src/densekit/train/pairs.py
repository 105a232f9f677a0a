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
from densekit.evaluate.beir import BeirDataset
from densekit.files.durability import atomic_write_text
from densekit.store.collection import Collection
from densekit.train.negatives import MiningConfig, mine_negatives
from densekit.train.recipe import DataRecipe


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
    recipe: DataRecipe,
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
        negatives, dropped = _mine(data, positives, texts, recipe, collection, seed)
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


def _mine(
    data: BeirDataset,
    positives: Mapping[str, list[str]],
    texts: Mapping[str, str],
    recipe: DataRecipe,
    collection: Collection,
    seed: int,
) -> tuple[dict[str, list[str]], int]:
    first, last = recipe.ranks
    filtered = recipe.margin is not None or recipe.cross_encoder is not None
    # Twice what is needed, so the filters still leave enough.
    wanted = recipe.negatives * (2 if filtered else 1)
    config = MiningConfig(
        per_query=wanted, depth=last, skip=first - 1, retrievers=recipe.retrievers, seed=seed
    )
    queries = {query: data.queries[query] for query in positives}
    known = {query: set(docs) for query, docs in positives.items()}
    mined = mine_negatives(collection, queries, known, config)
    dropped = 0
    if recipe.margin is not None:
        candidates = _Candidates(queries, positives, mined, texts)
        mined, dropped = candidates.drop_close(_dense_scores(collection, candidates), recipe.margin)
    if recipe.cross_encoder is not None:
        candidates = _Candidates(queries, positives, mined, texts)
        scores = _cross_encoder_scores(recipe.cross_encoder, candidates)
        mined, also = candidates.drop_close(scores, 1.0)
        dropped += also
    return {query: docs[: recipe.negatives] for query, docs in mined.items()}, dropped


Scores = dict[tuple[str, str], float]


@dataclass(frozen=True)
class _Candidates:
    """Each query's positives and mined negatives, and the texts to score them by."""

    queries: Mapping[str, str]
    positives: Mapping[str, list[str]]
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


def split_dev(
    positives: Mapping[str, list[str]], share: float, seed: int
) -> tuple[set[str], set[str]]:
    """Query ids for training and for dev, the dev share drawn reproducibly."""
    order = sorted(positives)
    np.random.default_rng(seed).shuffle(order)
    dev = set(order[: int(len(order) * share)]) if len(order) > 1 else set()
    return set(order) - dev, dev


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
