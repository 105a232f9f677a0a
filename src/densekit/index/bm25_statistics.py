"""BM25 over part of a collection, scored as the whole collection would score it.

A BM25 score depends on more than its document: on how many documents there are, their mean
length and how many of them hold each term. A shard that scored its documents with its own
counts would rank differently from the collection it belongs to, and the lists of two shards
could not be merged by score. Each shard's index is therefore built with the statistics of the
whole collection, the sum of every shard's own (:class:`CorpusStatistics`).
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from densekit.errors import CollectionError

# Saved beside a shard's bm25s files: its own counts and the counts its scores were made with.
STATISTICS_FILE = "statistics.json"


@dataclass(frozen=True)
class CorpusStatistics:
    """The counts BM25 scores with: ``documents``, ``length`` (terms in all the documents
    together) and ``frequencies`` (how many documents hold each term). Statistics of disjoint
    parts add up to those of the whole."""

    documents: int
    length: int
    frequencies: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, documents: Sequence[Sequence[str]]) -> CorpusStatistics:
        """The statistics of analysed documents (each a list of its terms)."""
        frequencies = Counter(term for terms in documents for term in set(terms))
        return cls(len(documents), sum(len(terms) for terms in documents), frequencies)

    @classmethod
    def total(cls, parts: Iterable[CorpusStatistics]) -> CorpusStatistics:
        documents, length, frequencies = 0, 0, Counter[str]()
        for part in parts:
            documents += part.documents
            length += part.length
            frequencies.update(part.frequencies)
        return cls(documents, length, frequencies)

    @property
    def mean_length(self) -> float:
        return self.length / self.documents if self.documents else 0.0

    def counts(self) -> dict[str, int]:
        """The document and term counts, without the per-term frequencies."""
        return {"documents": self.documents, "length": self.length}


@dataclass(frozen=True)
class ShardStatistics:
    """What a shard's BM25 index records of itself: its own ``documents`` and ``length``, and
    the whole collection's counts its scores were made with (``scored_with``)."""

    documents: int
    length: int
    scored_with: dict[str, int]

    def save(self, directory: Path) -> None:
        record = {"documents": self.documents, "length": self.length}
        (directory / STATISTICS_FILE).write_text(
            json.dumps({**record, "scored_with": self.scored_with}), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> ShardStatistics | None:
        """The record in ``directory``; None for an index that scored only its own documents."""
        path = directory / STATISTICS_FILE
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            scored_with = {key: int(record["scored_with"][key]) for key in ("documents", "length")}
            return cls(int(record["documents"]), int(record["length"]), scored_with)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CollectionError(f"{path}: unreadable ({exc}); rebuild the collection") from None


def bm25_ceilings(
    tokens: Sequence[Sequence[str]],
    frequencies: Sequence[np.ndarray],
    documents: int,
    weight: Callable[[str], float],
) -> np.ndarray:
    """The most each analysed query can score (see LexicalIndex.ceilings) among ``documents``
    documents, each of its terms held by ``frequencies`` of them: of one index, or summed over
    a collection's shards."""
    ceilings = np.zeros(len(tokens), dtype=np.float64)
    for number, (terms, counts) in enumerate(zip(tokens, frequencies, strict=True)):
        indexed = counts > 0
        weights = np.array(
            [weight(term) for term, kept in zip(terms, indexed, strict=True) if kept],
            dtype=np.float64,
        )
        frequency = counts[indexed].astype(np.float64)
        idf = np.log1p((documents - frequency + 0.5) / (frequency + 0.5))
        ceilings[number] = float((weights * idf).sum())
    return ceilings


def bm25_scored_with(
    statistics: CorpusStatistics, vocabulary: Mapping[str, int], **parameters: Any
) -> Any:
    """A bm25s.BM25 (``parameters`` as its own) whose :meth:`index` scores documents with
    ``statistics`` instead of counting them in the documents it is given; ``vocabulary`` maps
    the terms to the ids the documents will be given as."""
    frequencies = np.zeros(len(vocabulary), dtype=np.int64)
    for term, number in vocabulary.items():
        frequencies[number] = statistics.frequencies.get(term, 0)
    return _scored_with_class()(
        documents=statistics.documents,
        mean_length=statistics.mean_length,
        frequencies=frequencies,
        **parameters,
    )


@functools.cache
def _scored_with_class() -> type:
    import bm25s
    from bm25s import scoring

    class ScoredWith(bm25s.BM25):
        """bm25s.BM25 with its documented hook for building the index from term ids
        overridden: IDF from the given document frequencies and count, length normalisation by
        the given mean length; the rest as bm25s builds it."""

        def __init__(
            self, *, documents: int, mean_length: float, frequencies: np.ndarray, **parameters
        ) -> None:
            super().__init__(**parameters)
            if self.method in self.methods_requiring_nonoccurrence:
                raise ValueError(f"BM25 variant {self.method!r} is not supported across shards")
            self._given = (documents, mean_length, frequencies)

        def build_index_from_ids(
            self, unique_token_ids, corpus_token_ids, show_progress=True, leave_progress=False
        ):
            documents, mean_length, frequencies = self._given
            idf = scoring._build_idf_array(
                doc_frequencies=dict(enumerate(frequencies.tolist())),
                n_docs=documents,
                compute_idf_fn=scoring._select_idf_scorer(self.idf_method),
                dtype=self.dtype,
            )
            # Counted in these documents only for the size of the score arrays.
            postings = scoring._calculate_doc_freqs(
                corpus_tokens=corpus_token_ids,
                unique_tokens=unique_token_ids,
                show_progress=False,
            )
            data, rows, columns = scoring._build_scores_and_indices_for_matrix(
                corpus_token_ids=corpus_token_ids,
                idf_array=idf,
                # A numpy float, as bm25s passes its own: the length normalisation is then
                # computed in float64 (a Python float would keep it in float32).
                avg_doc_len=np.float64(mean_length),
                doc_frequencies=postings,
                k1=self.k1,
                b=self.b,
                delta=self.delta,
                nonoccurrence_array=None,
                method=self.method,
                dtype=self.dtype,
                int_dtype=self.int_dtype,
                show_progress=show_progress,
                leave_progress=leave_progress,
            )
            shape = (len(corpus_token_ids), len(unique_token_ids))
            data, indices, indptr = self._np_csc(data=data, rows=rows, cols=columns, shape=shape)
            self.nonoccurrence_array = None
            return {
                "data": data.astype(self.dtype),
                "indices": indices,
                "indptr": indptr,
                "num_docs": len(corpus_token_ids),
            }

    return ScoredWith
