from __future__ import annotations

from densekit.index.highlighting import Highlighter


def marked(highlighter: Highlighter, query: str, text: str) -> list[str]:
    terms = highlighter.query_terms(query)
    return [text[start:end] for start, end in highlighter.spans(terms, text)]


def test_whole_words_by_their_stems_never_stop_words_or_substrings() -> None:
    english = Highlighter()
    text = "The pandemic and Vitamin D: hypovitaminosis, vitamins and bones."
    assert marked(english, "vitamin and the bone", text) == ["Vitamin", "vitamins", "bones"]
    assert marked(english, "and", text) == []  # a stop word has no term to match
    assert marked(english, "", text) == []


def test_the_collection_s_analyser_decides() -> None:
    exact = Highlighter(stemmer="none")
    assert marked(exact, "vitamin", "Vitamin and vitamins") == ["Vitamin"]


def test_spans_index_the_text_as_given_when_lower_casing_changes_its_length() -> None:
    text = "İstanbul vitamins"  # "İ".lower() is two characters
    assert marked(Highlighter(), "vitamin", text) == ["vitamins"]
