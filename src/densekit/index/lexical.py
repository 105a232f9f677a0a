"""BM25 over whole documents with bm25s: English stemming, stop words, memory-mapped loading."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from densekit.errors import CollectionError

# Anserini/Pyserini's BM25 defaults, which its published BEIR numbers use.
DEFAULT_K1 = 0.9
DEFAULT_B = 0.4


def _stemmer(language: str):
    import Stemmer

    return Stemmer.Stemmer(language)


class LexicalIndex:
    """A bm25s index plus the exact tokenizer settings it was built with."""

    def __init__(self, retriever: object, stemmer: str = "english", stopwords: str = "en"):
        self.retriever = retriever
        self.stemmer_name = stemmer
        self.stopwords = stopwords
        self._stemmer = _stemmer(stemmer)

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        *,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        stemmer: str = "english",
        stopwords: str = "en",
        progress: bool = False,
    ) -> LexicalIndex:
        import bm25s

        tokens = bm25s.tokenize(
            list(texts), stopwords=stopwords, stemmer=_stemmer(stemmer), show_progress=progress
        )
        retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        retriever.index(tokens, show_progress=progress)
        return cls(retriever, stemmer, stopwords)

    def save(self, directory: Path) -> None:
        self.retriever.save(str(directory), show_progress=False)  # type: ignore[attr-defined]

    @classmethod
    def load(
        cls, directory: Path, *, stemmer: str = "english", stopwords: str = "en"
    ) -> LexicalIndex:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        try:
            retriever = bm25s.BM25.load(str(directory), mmap=True, show_progress=False)
        except (OSError, ValueError, KeyError) as exc:
            raise CollectionError(f"{directory}: unreadable BM25 index ({exc}); rebuild") from None
        return cls(retriever, stemmer, stopwords)

    @property
    def documents(self) -> int:
        return int(self.retriever.scores["num_docs"])  # type: ignore[attr-defined]

    def search(self, queries: Sequence[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top ``k`` documents per query as (rows, scores); those sharing no term are omitted."""
        import bm25s

        if not queries:
            return []
        tokens = bm25s.tokenize(
            list(queries),
            stopwords=self.stopwords,
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        k = min(k, self.documents)
        rows, scores = self.retriever.retrieve(  # type: ignore[attr-defined]
            tokens, k=k, show_progress=False, n_threads=1
        )
        results = []
        for query_rows, query_scores in zip(rows, scores, strict=True):
            keep = query_scores > 0
            results.append(
                (query_rows[keep].astype(np.int64), query_scores[keep].astype(np.float32))
            )
        return results
