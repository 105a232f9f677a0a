"""`filter` on /search: the documents searched, their metadata in hits, refusals with a 400."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from serving import API_KEY, build_hashing_collection, hashing_state

from densekit.serve.client import Client

ARTICLES = [
    {"_id": "a1", "text": "Vitamin D and bone health", "year": 2019, "lang": "en"},
    {"_id": "a2", "text": "Vitamin D bei Knochenbrüchen", "year": 2022, "lang": "de"},
    {"_id": "a3", "text": "Vitamin D supplements for bones", "year": 2023, "lang": "en"},
    {"_id": "a4", "text": "Cats and dogs", "year": 2023, "lang": "en", "draft": True},
]


@pytest.fixture
def url(tmp_path: Path, serve_state) -> str:
    directory = build_hashing_collection(tmp_path / "articles", ARTICLES)
    return serve_state(hashing_state({"articles": directory}))


def search(url: str, **body: object) -> httpx.Response:
    return httpx.post(url + "/search", json={"collection": "articles", **body}, timeout=30)


def test_search_returns_only_matching_documents_with_their_metadata(url: str) -> None:
    answer = search(url, query="vitamin D", k=10, filter="year >= 2020 and lang = 'en'")
    assert answer.status_code == 200, answer.text
    hits = answer.json()["results"][0]["hits"]
    assert {hit["id"] for hit in hits} == {"a3", "a4"}
    assert {hit["id"]: hit["metadata"] for hit in hits}["a4"] == {
        "year": 2023,
        "lang": "en",
        "draft": True,
    }
    only_ids = search(url, query="vitamin", fields=["id"], filter="draft exists").json()
    assert only_ids["results"][0]["hits"] == [{"id": "a4"}]


def test_documents_added_over_http_are_filtered_by_their_metadata(url: str) -> None:
    client = Client(url, api_key=API_KEY)
    client.add("articles", [{"id": "a5", "text": "Vitamin D in 2024", "year": 2024}])
    hits = client.search("articles", "vitamin", where="year = 2024")
    assert [(hit.id, hit.metadata) for hit in hits] == [("a5", {"year": 2024})]


@pytest.mark.parametrize(
    ("where", "detail"),
    [
        ("year >= '2020'", "filter: year holds numbers, never text"),
        ("country = 'de'", "filter: no document has a field country; their fields: draft, lang"),
        ("year >=", "filter: column 8: expected a value"),
    ],
)
def test_bad_filters_are_refused_with_400_and_the_reason(url: str, where: str, detail: str) -> None:
    answer = search(url, query="vitamin", filter=where)
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith(detail)


def test_a_filter_is_bounded_like_the_rest_of_the_request(url: str) -> None:
    answer = search(url, query="vitamin", filter="year > 1 or " * 500 + "year > 1")
    assert answer.status_code == 422 and "filter" in answer.text
