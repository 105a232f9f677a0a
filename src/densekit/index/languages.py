"""How BM25 reads each language: its stemmer, its stop words, and for Chinese, Japanese and
Korean, where words are not separated by spaces, overlapping character bigrams.

Bigrams are the segmenter-free standard for CJK retrieval (they match every two-character word
and most longer ones by their parts) and need no dictionary; a language's setting is stored
with the collection, so queries are read the way the documents were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from densekit.errors import InputError

CJK_BIGRAMS = "cjk-bigrams"  # in place of a stemmer: CJK runs cut into bigrams, no stemming
NO_STOPWORDS = "none"

# Han (with extensions and compatibility forms), hiragana, katakana and Hangul syllables.
CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")


@dataclass(frozen=True)
class Language:
    code: str
    stemmer: str  # a PyStemmer algorithm, "none", or CJK_BIGRAMS
    stopwords: str  # a bm25s stop-word list, or NO_STOPWORDS


LANGUAGES: dict[str, Language] = {
    language.code: language
    for language in (
        Language("en", "english", "en"),
        Language("de", "german", "de"),
        Language("fr", "french", "fr"),
        Language("es", "spanish", "es"),
        Language("it", "italian", "it"),
        Language("pt", "portuguese", "pt"),
        Language("nl", "dutch", "nl"),
        Language("sv", "swedish", "sv"),
        Language("no", "norwegian", "no"),
        Language("da", "danish", "da"),
        Language("ru", "russian", "ru"),
        Language("tr", "turkish", "tr"),
        Language("zh", CJK_BIGRAMS, "zh"),
        Language("ja", CJK_BIGRAMS, NO_STOPWORDS),
        Language("ko", CJK_BIGRAMS, "ko"),
        Language("none", "none", NO_STOPWORDS),  # words exactly as written, none dropped
    )
}


def language_settings(code: str) -> Language:
    found = LANGUAGES.get(code.strip().lower())
    if found is None:
        raise InputError(
            f"unknown BM25 language {code!r}; choose one of {', '.join(LANGUAGES)} (none: no "
            "stemming and no stop words, for any other language)"
        )
    return found


def cjk_bigrams(text: str) -> str:
    """``text`` with each run of CJK characters written as its overlapping bigrams, spaced
    (a single character stays as it is); other text is left alone."""

    def spaced(run: re.Match[str]) -> str:
        chars = run.group()
        if len(chars) == 1:
            return f" {chars} "
        return " " + " ".join(chars[i : i + 2] for i in range(len(chars) - 1)) + " "

    return CJK_RUN.sub(spaced, text)
