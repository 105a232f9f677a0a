"""Where a query's terms occur in a text, as BM25's analyser reads both: the spans to mark.

A word of the text is marked when its term (lower-cased, stemmed; stop words have none) is one
of the query's terms, so "pandemic" is not marked for the query "and", and "vitamins" is for
"vitamin" under an English stemmer.
"""

from __future__ import annotations

import re

from densekit.index.analysis import BM25S_TOKENS, CLASSIC_TERMS, SEGMENTED_TOKENS, Analyzer
from densekit.index.languages import CJK_RUN

# The analyser's token patterns (densekit.index.lexical): two characters or more, or with CJK
# bigrams, one or more.
WORD = re.compile(BM25S_TOKENS)
SEGMENTED_WORD = re.compile(SEGMENTED_TOKENS)


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
        if self._analyzer.segments:  # CJK runs: the bigrams that match; the rest as words
            marked = _bigram_spans(terms, text)
            spaced = CJK_RUN.sub(lambda run: " " * len(run.group()), text)
            return sorted(marked + self._word_spans(terms, spaced, SEGMENTED_WORD))
        return self._word_spans(terms, text, WORD)

    def _word_spans(
        self, terms: frozenset[str], text: str, pattern: re.Pattern[str]
    ) -> list[tuple[int, int]]:
        # Spans of the text as given (lower-casing may change a text's length).
        words = list(pattern.finditer(text))
        distinct = list(dict.fromkeys(match.group().lower() for match in words))
        # One call of the analyser over the distinct words: each gives its term, or none.
        matching = {
            word
            for word, analysed in zip(distinct, self._analyzer.terms(distinct), strict=True)
            if terms.intersection(analysed)
        }
        return [match.span() for match in words if match.group().lower() in matching]


def _bigram_spans(terms: frozenset[str], text: str) -> list[tuple[int, int]]:
    """Spans of the CJK bigrams of ``text`` that are ``terms``, overlapping ones merged."""
    spans: list[tuple[int, int]] = []
    for run in CJK_RUN.finditer(text):
        chars, start = run.group(), run.start()
        for i in range(max(1, len(chars) - 1)):
            if chars[i : i + 2] in terms:
                begin, end = start + i, start + min(i + 2, len(chars))
                if spans and spans[-1][1] >= begin:
                    spans[-1] = (spans[-1][0], end)
                else:
                    spans.append((begin, end))
    return spans
