"""How text becomes BM25 terms: words (lower-cased, stop words dropped, stemmed, or CJK runs
as bigrams), plus the weighted extra terms of :class:`TermWeights` (exact word forms, adjacent
word pairs). One :class:`Analyzer` reads both the documents and the queries of an index."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from densekit.errors import InputError
from densekit.index.languages import CJK_BIGRAMS, NO_STOPWORDS, cjk_bigrams

# No stemming: BM25 matches words exactly ("limes" no longer matches "Key Lime Pies").
NO_STEMMER = "none"
PROGRESS_CHUNK = 2_000  # texts analysed between two moves of the progress bar
BM25S_TOKENS = r"(?u)\b\w\w+\b"  # bm25s's default: words of two characters or more
SEGMENTED_TOKENS = r"(?u)\b\w+\b"  # with CJK bigrams: a lone character is a word too


def _stemmer(language: str):
    if language in (NO_STEMMER, CJK_BIGRAMS):
        return None
    import Stemmer

    return Stemmer.Stemmer(language)


# Marks of the extra terms; bm25s's tokenizer only makes runs of word characters, so neither
# can be taken for a word.
EXACT_MARK = "="
PAIR_JOIN = " "


@dataclass(frozen=True)
class TermWeights:
    """How much a BM25 index's extra terms count, against 1 for a word's stem: ``exact`` for
    the word as written ("limes" besides "lime", so a document holding the query's own word
    outranks one holding a relative of it), ``pairs`` for two words next to each other (stems,
    stop words left out), after the ordered pairs of the sequential dependence model (Metzler
    and Croft, 2005), so "baking powder" outranks a document with "baking" and "powder" apart.
    Each extra term is scored as BM25 scores a word, then scaled by its weight. 0 and 0 is
    classic BM25."""

    exact: float = 0.0
    pairs: float = 0.0

    def __post_init__(self) -> None:
        for name, value in (("exact", self.exact), ("pairs", self.pairs)):
            if not (math.isfinite(value) and value >= 0):
                raise InputError(
                    f"BM25 {name} weight {value!r}: give a number >= 0 (0 leaves those terms out)"
                )

    def describe(self) -> str:
        if not (self.exact or self.pairs):
            return "classic (words only)"
        return f"words 1 + exact forms {self.exact:g} + word pairs {self.pairs:g}"


CLASSIC_TERMS = TermWeights()
# A hybrid's BM25 list is there for the query's exact wording: chosen with the fused default
# over the query sets of benchmarks/fusion.py, SciFact train in place of SciFact test
# (benchmarks/fusion_rule.py).
HYBRID_TERMS = TermWeights(exact=0.25, pairs=0.25)


class Analyzer:
    """Text to BM25 terms: lower-cased words without stop words, stemmed, plus the extra terms
    of ``weights`` (exact forms only where there is a stemmer to differ from)."""

    def __init__(self, stemmer: str, stopwords: str, weights: TermWeights) -> None:
        self.stemmer = stemmer
        self.stopwords = stopwords
        self.weights = weights
        self._stemmer = _stemmer(stemmer)
        self._segment = stemmer == CJK_BIGRAMS
        self._stopwords = None if stopwords == NO_STOPWORDS else stopwords
        self._exact = weights.exact > 0 and self._stemmer is not None
        # PyStemmer's stemmers keep a cache and are not thread-safe; servers search from many.
        self._lock = threading.Lock()

    @property
    def segments(self) -> bool:
        """Whether runs of CJK characters are read as their bigrams."""
        return self._segment

    def terms(self, texts: Sequence[str], *, progress: bool = False) -> list[list[str]]:
        """Each text's terms; with ``progress``, one bar over the texts (bm25s's own bars,
        several per call, stay off)."""
        texts = list(texts)
        if not progress:
            return self._terms(texts)
        terms: list[list[str]] = []
        with tqdm(total=len(texts), desc="BM25 terms", unit="doc") as bar:
            for start in range(0, len(texts), PROGRESS_CHUNK):
                chunk = texts[start : start + PROGRESS_CHUNK]
                terms += self._terms(chunk)
                bar.update(len(chunk))
        return terms

    def _terms(self, texts: list[str]) -> list[list[str]]:
        import bm25s

        pattern = BM25S_TOKENS
        if self._segment:  # a lone CJK character is a word: keep one-character tokens
            texts, pattern = [cjk_bigrams(text) for text in texts], SEGMENTED_TOKENS
        with self._lock:
            if not (self._exact or self.weights.pairs):
                return bm25s.tokenize(
                    texts,
                    token_pattern=pattern,
                    stopwords=self._stopwords,
                    stemmer=self._stemmer,
                    return_ids=False,
                    show_progress=False,
                )
            words = bm25s.tokenize(
                texts,
                token_pattern=pattern,
                stopwords=self._stopwords,
                return_ids=False,
                show_progress=False,
            )
            return [self._with_extra_terms(document) for document in words]

    def _with_extra_terms(self, words: list[str]) -> list[str]:
        stems = self._stemmer.stemWords(words) if self._stemmer is not None else words
        terms = list(stems)
        if self._exact:
            terms += [EXACT_MARK + word for word in words]
        if self.weights.pairs:
            terms += [first + PAIR_JOIN + second for first, second in itertools.pairwise(stems)]
        return terms

    def weight(self, term: str) -> float:
        """What ``term`` counts for against a stem's 1."""
        if term.startswith(EXACT_MARK):
            return self.weights.exact
        if PAIR_JOIN in term:
            return self.weights.pairs
        return 1.0


def check_stemmer(language: str) -> None:
    """Refuse a stemmer PyStemmer does not have, naming the ones it does."""
    import Stemmer

    known = sorted(Stemmer.algorithms())
    if language not in (NO_STEMMER, CJK_BIGRAMS) and language not in known:
        raise InputError(
            f"unknown BM25 stemmer {language!r}; choose {NO_STEMMER} (exact words), "
            f"{CJK_BIGRAMS} (Chinese, Japanese, Korean) or one of {', '.join(known)}"
        )
