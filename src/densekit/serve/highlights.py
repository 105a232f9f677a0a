"""Hit highlights for a search answer: the query's terms in each hit, as BM25 reads them."""

from __future__ import annotations

from densekit.index.highlighting import Highlighter
from densekit.serve.schemas import Highlights, QueryResult
from densekit.store.manifest import LexicalInfo


def highlight_hits(results: list[QueryResult], lexical: LexicalInfo | None) -> None:
    """Give every hit of ``results`` its highlights, with the collection's BM25 settings (a
    collection without BM25: English, as BM25 is built by default)."""
    highlighter = Highlighter(lexical.stemmer, lexical.stopwords) if lexical else Highlighter()
    for result in results:
        terms = highlighter.query_terms(result.query)
        for hit in result.hits:
            hit.highlights = Highlights(
                title=highlighter.spans(terms, hit.title or ""),
                text=highlighter.spans(terms, hit.text or ""),
            )
