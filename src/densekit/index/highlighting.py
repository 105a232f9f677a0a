"""Where a query's terms occur in a text, as BM25's analyser reads both: the spans to mark.

A word of the text is marked when its term (lower-cased, stemmed; stop words have none) is one
of the query's terms, so "pandemic" is not marked for the query "and", and "vitamins" is for
"vitamin" under an English stemmer.
"""

from __future__ import annotations

import re

from densekit.index.lexical import CLASSIC_TERMS, Analyzer

# bm25s's default token pattern: runs of two or more word characters.
WORD = re.compile(r"(?u)\b\w\w+\b")


class Highlighter:
    """Marks a query's terms in texts, with one collection's BM25 settings."""

    def __init__(self, stemmer: str = "english", stopwords: str = "en") -> None:
        self._analyzer = Analyzer(stemmer, stopwords, CLASSIC_TERMS)

    def query_terms(self, query: str) -> frozenset[str]:
        return frozenset(self._analyzer.terms([query])[0])

    def spans(self, terms: frozenset[str], text: str) -> list[tuple[int, int]]:
        """Character spans (start, end) of ``text``'s words whose term is in ``terms``."""
        if not terms or not text:
            return []
        # Spans of the text as given (lower-casing may change a text's length).
        words = list(WORD.finditer(text))
        distinct = list(dict.fromkeys(match.group().lower() for match in words))
        # One call of the analyser over the distinct words: each gives its term, or none.
        matching = {
            word
            for word, analysed in zip(distinct, self._analyzer.terms(distinct), strict=True)
            if terms.intersection(analysed)
        }
        return [match.span() for match in words if match.group().lower() in matching]
