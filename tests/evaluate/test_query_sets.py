from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import DOCUMENTS, write_jsonl

from densekit.errors import InputError
from densekit.evaluate import load_beir
from densekit.evaluate.query_sets import QuerySetSpec, make_queries


def test_span_queries_are_runs_of_words_of_their_document(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    report = make_queries(corpus, tmp_path / "spans", QuerySetSpec("span", n=4, span_tokens=5))
    data = load_beir(tmp_path / "spans", "test")
    texts = {d["_id"]: d["text"] for d in DOCUMENTS}
    assert report.queries == 4 and len(data.queries) == 4
    for query_id, query in data.queries.items():
        (doc_id,) = data.qrels[query_id]
        assert query in texts[doc_id]
        assert len(re.findall(r"\w+", query)) == 5


def test_keyword_queries_are_salient_terms_of_their_document(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    make_queries(corpus, tmp_path / "keywords", QuerySetSpec("keyword", n=5, keywords=3))
    data = load_beir(tmp_path / "keywords", "test")
    documents = {d["_id"]: f"{d['title']} {d['text']}".lower() for d in DOCUMENTS}
    for query_id, query in data.queries.items():
        (doc_id,) = data.qrels[query_id]
        terms = query.split()
        assert 1 <= len(terms) <= 3
        assert all(term in documents[doc_id] for term in terms)
        assert "the" not in terms and "and" not in terms  # stop words are never salient
    # d3 says "vitamin" twice (title and text), in 2 of 5 documents: 2 ln(5/2) beats the
    # ln 5 of its once-said unique terms, which tie and go alphabetically.
    d3 = next(q for q, docs in data.qrels.items() if "d3" in docs)
    assert data.queries[d3] == "vitamin bone deficiency"


def test_sets_are_deterministic_by_seed(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    spec = QuerySetSpec("span", n=3, span_tokens=3, seed=7)
    make_queries(corpus, tmp_path / "a", spec)
    make_queries(corpus, tmp_path / "b", spec)
    make_queries(corpus, tmp_path / "c", QuerySetSpec("span", n=3, span_tokens=3, seed=8))
    read = lambda name: (tmp_path / name / "queries.jsonl").read_text()  # noqa: E731
    assert read("a") == read("b") != read("c")
    card = json.loads((tmp_path / "a" / "densekit_queries.json").read_text())
    assert card["seed"] == 7 and card["task"] == "span"


def test_impossible_requests_are_refused_before_writing(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    with pytest.raises(
        InputError, match="only 0 documents have at least 40 words; use another corpus"
    ):
        make_queries(corpus, tmp_path / "out", QuerySetSpec("span", n=2, span_tokens=40))
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="only 5 documents"):
        make_queries(corpus, tmp_path / "out", QuerySetSpec("keyword", n=6))
    with pytest.raises(InputError, match="--task"):
        QuerySetSpec("phrase")  # type: ignore[arg-type]
