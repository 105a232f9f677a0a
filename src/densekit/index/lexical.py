"""BM25 over whole documents with bm25s: English stemming, stop words, memory-mapped loading."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from densekit.errors import CollectionError, InputError

# Anserini/Pyserini's BM25 defaults, which its published BEIR numbers use.
DEFAULT_K1 = 0.9
DEFAULT_B = 0.4
# Which document row each indexed text is, when not simply 0, 1, 2, ... (tombstoned rows are
# left out of the index, so its statistics are those of the live documents).
ROWS_FILE = "document_rows.npy"


# No stemming: BM25 matches words exactly ("limes" no longer matches "Key Lime Pies").
NO_STEMMER = "none"


def _stemmer(language: str):
    if language == NO_STEMMER:
        return None
    import Stemmer

    return Stemmer.Stemmer(language)


def check_stemmer(language: str) -> None:
    """Refuse a stemmer PyStemmer does not have, naming the ones it does."""
    import Stemmer

    known = sorted(Stemmer.algorithms())
    if language != NO_STEMMER and language not in known:
        raise InputError(
            f"unknown BM25 stemmer {language!r}; choose {NO_STEMMER} (exact words) or one of "
            f"{', '.join(known)}"
        )


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
    ):
        self.retriever = retriever
        self.stemmer_name = stemmer
        self.stopwords = stopwords
        self.rows = rows
        self._stemmer = _stemmer(stemmer)
        # PyStemmer's stemmers keep a cache and are not thread-safe; servers search from many.
        self._tokenize_lock = threading.Lock()

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
        rows: np.ndarray | None = None,
    ) -> LexicalIndex:
        import bm25s

        tokens = bm25s.tokenize(
            list(texts), stopwords=stopwords, stemmer=_stemmer(stemmer), show_progress=progress
        )
        quiet = contextlib.nullcontext()
        if not tokens.vocab:
            # Only stop words (or no words) anywhere: bm25s cannot index an empty vocabulary,
            # so it gets its own placeholder for "no token" and the index matches nothing (its
            # average document length is 0, which numpy would warn about).
            tokens = bm25s.tokenization.Tokenized(ids=tokens.ids, vocab={"": 0})
            quiet = np.errstate(invalid="ignore", divide="ignore")
        retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        with quiet:
            retriever.index(tokens, show_progress=progress)
        return cls(retriever, stemmer, stopwords, rows)

    def save(self, directory: Path) -> None:
        self.retriever.save(str(directory), show_progress=False)  # type: ignore[attr-defined]
        if self.rows is not None:
            np.save(directory / ROWS_FILE, np.asarray(self.rows, dtype=np.int64))

    @classmethod
    def load(
        cls, directory: Path, *, stemmer: str = "english", stopwords: str = "en"
    ) -> LexicalIndex:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        try:
            retriever = bm25s.BM25.load(str(directory), mmap=True, show_progress=False)
            rows = np.load(directory / ROWS_FILE) if (directory / ROWS_FILE).is_file() else None
        except (OSError, ValueError, KeyError) as exc:
            raise CollectionError(f"{directory}: unreadable BM25 index ({exc}); rebuild") from None
        if rows is not None and len(rows) != int(retriever.scores["num_docs"]):
            raise CollectionError(
                f"{directory}: {ROWS_FILE} maps {len(rows)} documents, the BM25 index holds "
                f"{retriever.scores['num_docs']}; rebuild the collection"
            )
        return cls(retriever, stemmer, stopwords, rows)

    @property
    def documents(self) -> int:
        return int(self.retriever.scores["num_docs"])  # type: ignore[attr-defined]

    def search(self, queries: Sequence[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top ``k`` documents per query as (rows, scores); those sharing no term are omitted."""
        return self._search(self._tokens(queries), k) if queries else []

    def ceilings(self, queries: Sequence[str]) -> np.ndarray:
        """The most each query can score: the sum of its indexed terms' IDFs (a BM25 term's
        saturating tf part tends to 1, in the Lucene form bm25s computes); 0 for a query none
        of whose terms is indexed. Terms repeated in a query count each time, as they score."""
        return self._ceilings(self._tokens(queries) if queries else [])

    def search_with_ceilings(
        self, queries: Sequence[str], k: int
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
        """:meth:`search` and :meth:`ceilings` from one tokenisation of the queries."""
        tokens = self._tokens(queries) if queries else []
        return (self._search(tokens, k) if queries else []), self._ceilings(tokens)

    def _search(self, tokens: list[list[str]], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        k = min(k, self.documents)
        rows, scores = self.retriever.retrieve(  # type: ignore[attr-defined]
            tokens, k=k, show_progress=False, n_threads=1
        )
        results = []
        for query_rows, query_scores in zip(rows, scores, strict=True):
            keep = query_scores > 0
            positions = query_rows[keep].astype(np.int64)
            rows = positions if self.rows is None else self.rows[positions]
            results.append((rows, query_scores[keep].astype(np.float32)))
        return results

    def _ceilings(self, tokens: list[list[str]]) -> np.ndarray:
        vocabulary: dict[str, int] = self.retriever.vocab_dict  # type: ignore[attr-defined]
        indptr = np.asarray(self.retriever.scores["indptr"])  # type: ignore[attr-defined]
        documents = self.documents
        ceilings = np.zeros(len(tokens), dtype=np.float64)
        for number, terms in enumerate(tokens):
            ids = np.array([vocabulary[t] for t in terms if t in vocabulary], dtype=np.int64)
            frequency = (indptr[ids + 1] - indptr[ids]).astype(np.float64)
            idf = np.log1p((documents - frequency + 0.5) / (frequency + 0.5))
            ceilings[number] = float(idf.sum())
        return ceilings

    def _tokens(self, queries: Sequence[str]) -> list[list[str]]:
        import bm25s

        with self._tokenize_lock:
            return bm25s.tokenize(
                list(queries),
                stopwords=self.stopwords,
                stemmer=self._stemmer,
                return_ids=False,
                show_progress=False,
            )
