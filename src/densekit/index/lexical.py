"""BM25 over whole documents with bm25s: an index of the terms :mod:`densekit.index.analysis`
reads (stems, exact word forms and adjacent word pairs as weighted extra terms), scored with its
own or a whole collection's statistics, memory-mapped loading."""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from densekit.errors import CollectionError
from densekit.index.analysis import (  # noqa: F401 - part of this module's interface
    BM25S_TOKENS,
    CLASSIC_TERMS,
    EXACT_MARK,
    HYBRID_TERMS,
    NO_STEMMER,
    PAIR_JOIN,
    SEGMENTED_TOKENS,
    Analyzer,
    TermWeights,
    check_stemmer,
)
from densekit.index.bm25_statistics import (
    CorpusStatistics,
    ShardStatistics,
    bm25_ceilings,
    bm25_scored_with,
)

# Anserini/Pyserini's BM25 defaults, which its published BEIR numbers use.
DEFAULT_K1 = 0.9
DEFAULT_B = 0.4
# Which document row each indexed text is, when not simply 0, 1, 2, ... (tombstoned rows are
# left out of the index, so its statistics are those of the live documents).
ROWS_FILE = "document_rows.npy"


class LexicalIndex:
    """A bm25s index plus the exact tokenizer settings it was built with.

    ``rows`` maps the index's positions to document rows; ``None`` means position = row.
    """

    def __init__(
        self,
        retriever: object,
        stemmer: str = "english",
        stopwords: str = "en",
        rows: np.ndarray | None = None,
        terms: TermWeights = CLASSIC_TERMS,
    ):
        self.retriever = retriever
        self.stemmer_name = stemmer
        self.stopwords = stopwords
        self.rows = rows
        self.terms = terms
        self._analyzer = Analyzer(stemmer, stopwords, terms)
        # For a shard's index: its own counts and the collection's it was scored with.
        self.shard: ShardStatistics | None = None

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        *,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        stemmer: str = "english",
        stopwords: str = "en",
        terms: TermWeights = CLASSIC_TERMS,
        progress: bool = False,
        rows: np.ndarray | None = None,
        statistics: CorpusStatistics | None = None,
    ) -> LexicalIndex:
        """BM25 over ``texts``, scored with their own statistics or, for a shard of a
        collection, with the whole collection's ``statistics`` (see :func:`shard_indexes`)."""
        analyzer = Analyzer(stemmer, stopwords, terms)
        documents = analyzer.terms(texts, progress=progress)
        return cls._index(documents, analyzer, k1, b, rows, statistics)

    @classmethod
    def _index(
        cls,
        documents: list[list[str]],
        analyzer: Analyzer,
        k1: float,
        b: float,
        rows: np.ndarray | None,
        statistics: CorpusStatistics | None,
    ) -> LexicalIndex:
        import bm25s

        vocabulary = {
            term: number
            for number, term in enumerate(
                dict.fromkeys(term for document in documents for term in document)
            )
        }
        quiet = contextlib.nullcontext()
        if not vocabulary:
            # Only stop words (or no words) anywhere: bm25s cannot index an empty vocabulary,
            # so it gets its own placeholder for "no token" and the index matches nothing (its
            # average document length is 0, which numpy would warn about).
            vocabulary = {"": 0}
            quiet = np.errstate(invalid="ignore", divide="ignore")
        ids = [[vocabulary[term] for term in document] for document in documents]
        parameters = {"k1": k1, "b": b, "method": "lucene"}
        shard = None
        if statistics is None:
            retriever = bm25s.BM25(**parameters)
        else:
            retriever = bm25_scored_with(statistics, vocabulary, **parameters)
            own = CorpusStatistics(len(documents), sum(len(terms) for terms in documents))
            shard = ShardStatistics(own.documents, own.length, statistics.counts())
        with quiet:
            retriever.index(
                bm25s.tokenization.Tokenized(ids=ids, vocab=vocabulary), show_progress=False
            )
        _scale_extra_terms(retriever, analyzer)
        index = cls(retriever, analyzer.stemmer, analyzer.stopwords, rows, analyzer.weights)
        index.shard = shard
        return index

    def save(self, directory: Path) -> None:
        self.retriever.save(str(directory), show_progress=False)  # type: ignore[attr-defined]
        if self.shard is not None:
            self.shard.save(directory)
        if self.rows is not None:
            np.save(directory / ROWS_FILE, np.asarray(self.rows, dtype=np.int64))

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        stemmer: str = "english",
        stopwords: str = "en",
        terms: TermWeights = CLASSIC_TERMS,
    ) -> LexicalIndex:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        try:
            retriever = bm25s.BM25.load(str(directory), mmap=True, show_progress=False)
            rows = np.load(directory / ROWS_FILE) if (directory / ROWS_FILE).is_file() else None
            shard = ShardStatistics.load(directory)
        except (OSError, ValueError, KeyError) as exc:
            raise CollectionError(f"{directory}: unreadable BM25 index ({exc}); rebuild") from None
        if rows is not None and len(rows) != int(retriever.scores["num_docs"]):
            raise CollectionError(
                f"{directory}: {ROWS_FILE} maps {len(rows)} documents, the BM25 index holds "
                f"{retriever.scores['num_docs']}; rebuild the collection"
            )
        index = cls(retriever, stemmer, stopwords, rows, terms)
        index.shard = shard
        return index

    @property
    def documents(self) -> int:
        return int(self.retriever.scores["num_docs"])  # type: ignore[attr-defined]

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top ``k`` documents per query as (rows, scores); those sharing no term are omitted.
        ``allowed`` (a boolean per document row): only those documents rank."""
        return self._search(self._tokens(queries), k, allowed) if queries else []

    def ceilings(self, queries: Sequence[str]) -> np.ndarray:
        """The most each query can score: the sum of its indexed terms' IDFs, each times its
        weight (a BM25 term's saturating tf part tends to 1, in the Lucene form bm25s
        computes); 0 for a query none of whose terms is indexed. Terms repeated in a query
        count each time, as they score."""
        return self._ceilings(self._tokens(queries) if queries else [])

    def search_with_ceilings(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
        """:meth:`search` and :meth:`ceilings` from one tokenisation of the queries."""
        tokens = self._tokens(queries) if queries else []
        return (self._search(tokens, k, allowed) if queries else []), self._ceilings(tokens)

    def _search(
        self, tokens: list[list[str]], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        k = min(k, self.documents)
        mask = None
        if allowed is not None:  # bm25s scores the masked-out documents 0, which are dropped
            mask = (allowed if self.rows is None else allowed[self.rows]).astype(np.float32)
            k = min(k, max(1, int(np.count_nonzero(mask))))
        rows, scores = self.retriever.retrieve(  # type: ignore[attr-defined]
            tokens, k=k, show_progress=False, n_threads=1, weight_mask=mask
        )
        results = []
        for query_rows, query_scores in zip(rows, scores, strict=True):
            keep = query_scores > 0
            positions = query_rows[keep].astype(np.int64)
            rows = positions if self.rows is None else self.rows[positions]
            results.append((rows, query_scores[keep].astype(np.float32)))
        return results

    def _ceilings(self, tokens: list[list[str]]) -> np.ndarray:
        return bm25_ceilings(tokens, self.frequencies(tokens), self.documents, self.weight)

    def frequencies(self, tokens: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """For each analysed query, how many of this index's documents hold each of its terms
        (0 for a term it does not index)."""
        vocabulary: dict[str, int] = self.retriever.vocab_dict  # type: ignore[attr-defined]
        postings = np.diff(np.asarray(self.retriever.scores["indptr"]))  # type: ignore[attr-defined]
        found = []
        for terms in tokens:
            ids = [vocabulary.get(term, len(postings)) for term in terms]
            # bm25s's "no token" placeholder and unknown terms lie past the postings: none.
            found.append(
                np.array([postings[i] if i < len(postings) else 0 for i in ids], dtype=np.int64)
            )
        return found

    def weight(self, term: str) -> float:
        """What an analysed term counts for against a stem's 1 (see :class:`TermWeights`)."""
        return self._analyzer.weight(term)

    def analyse(self, queries: Sequence[str]) -> list[list[str]]:
        """The queries' terms, as this index's documents were analysed."""
        return self._tokens(queries) if queries else []

    def search_terms(
        self, tokens: list[list[str]], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`search` for queries already analysed (:meth:`analyse`)."""
        return self._search(tokens, k, allowed) if tokens else []

    def _tokens(self, queries: Sequence[str]) -> list[list[str]]:
        return self._analyzer.terms(queries)


def corpus_statistics(
    texts: Iterable[str],
    *,
    stemmer: str = "english",
    stopwords: str = "en",
    terms: TermWeights = CLASSIC_TERMS,
    batch: int = 10_000,
) -> CorpusStatistics:
    """The BM25 statistics of ``texts`` as an index with these settings counts them, analysed
    ``batch`` texts at a time (only the counts are kept)."""
    analyzer = Analyzer(stemmer, stopwords, terms)
    documents, length, frequencies = 0, 0, Counter[str]()
    iterator = iter(texts)
    while chunk := list(itertools.islice(iterator, batch)):
        for analysed in analyzer.terms(chunk):
            documents += 1
            length += len(analysed)
            frequencies.update(set(analysed))
    return CorpusStatistics(documents, length, frequencies)


def shard_indexes(
    shards: Sequence[Sequence[str]],
    *,
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
    stemmer: str = "english",
    stopwords: str = "en",
    terms: TermWeights = CLASSIC_TERMS,
    rows: Sequence[np.ndarray | None] | None = None,
    progress: bool = False,
) -> list[LexicalIndex]:
    """BM25 indexes of a collection's shards (the texts of each; ``rows`` maps each shard's
    positions as :class:`LexicalIndex` does), each scored with the statistics of all of them:
    a document scores in its shard's index as in one index of the whole collection, so the
    shards' lists merge by score."""
    analyzer = Analyzer(stemmer, stopwords, terms)
    analysed = [analyzer.terms(texts, progress=progress) for texts in shards]
    total = CorpusStatistics.total(CorpusStatistics.of(documents) for documents in analysed)
    shard_rows = rows if rows is not None else [None] * len(shards)
    return [
        LexicalIndex._index(documents, analyzer, k1, b, positions, total)
        for documents, positions in zip(analysed, shard_rows, strict=True)
    ]


def _scale_extra_terms(retriever: object, analyzer: Analyzer) -> None:
    """Scale each extra term's stored BM25 contributions by its weight, so a search sums
    weighted terms in bm25s's one pass over the query's postings."""
    if not (analyzer.weights.exact or analyzer.weights.pairs):
        return
    vocabulary: dict[str, int] = retriever.vocab_dict  # type: ignore[attr-defined]
    scores = retriever.scores  # type: ignore[attr-defined]
    weights = np.ones(len(scores["indptr"]) - 1, dtype=np.float64)
    for term, number in vocabulary.items():
        if number < len(weights):  # bm25s's "no token" placeholder has no postings
            weights[number] = analyzer.weight(term)
    postings = np.diff(np.asarray(scores["indptr"]))
    scores["data"] = (scores["data"] * np.repeat(weights, postings)).astype(scores["data"].dtype)
