"""Bodies Python's JSON reader takes but JSON does not (lone surrogates, NaN, 1e400), and other
malformed input: a 4xx whose body is valid JSON, never a 500 or a logged traceback."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from serving import API_KEY, RunningServer

JSON = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
WRITE = "/collections/docs/documents"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/search", rb'{"query": "\ud800"}'),  # invalid, and the error would echo it
        ("/search", rb'{"collection": "docs", "query": "\ud800"}'),
        ("/search", rb'{"collection": "docs", "query": "a\udc00b"}'),
        ("/search", b'{"collection": "docs", "query": "\xed\xa0\x80"}'),  # a surrogate's bytes
        ("/search", rb'{"collection": "docs", "\ud800": "x"}'),
        ("/search", rb'{"collection": "docs", "queries": ["ok", "\udfff"]}'),
        ("/search", b'{"collection": "docs", "query": "caf\xe9"}'),  # not UTF-8
        ("/search", b'{"collection": "docs", "query": "x", "k": 1e400}'),
        ("/search", b'{"collection": "docs", "query": "x", "k": -1e400}'),
        ("/search", b'{"collection": "docs", "query": "x", "k": NaN}'),
        ("/search", b'{"collection": "docs", "query": "x", "k": Infinity}'),
        ("/search", b'{"collection": "docs", "query": "x", "k": -Infinity}'),
        ("/search", b'{"collection": "docs", "query": "x", "k": ' + b"9" * 5000 + b"}"),
        ("/search", b'{"k": 1e400}'),
        ("/v1/embeddings", rb'{"model": "hashing", "input": "\ud800"}'),
        ("/v1/embeddings", rb'{"model": "hashing", "input": ["a", "\ud800"]}'),
        ("/v1/embeddings", b'{"model": "hashing", "input": "x", "dimensions": 1e400}'),
        ("/v1/embeddings", b'{"model": "hashing", "input": "x", "dimensions": NaN}'),
        (WRITE, rb'{"documents": [{"id": "\ud800", "text": "t"}]}'),
        (WRITE, rb'{"documents": [{"id": "s", "text": "\udbff"}]}'),
        (WRITE, b'{"documents": [{"id": "m", "text": "t", "metadata": {"x": NaN}}]}'),
        (WRITE, b'{"documents": [{"id": "m", "text": "t", "metadata": {"x": 1e999}}]}'),
        ("/collections/docs/delete", rb'{"ids": ["\ud800"]}'),
        ("/collections/docs/delete", b'{"ids": Infinity}'),
    ],
)
def test_bodies_json_cannot_carry_get_a_4xx_in_json(
    server: RunningServer, caplog, path: str, body: bytes
) -> None:
    with caplog.at_level(logging.ERROR):
        answer = httpx.post(server.url + path, content=body, headers=JSON, timeout=30)
    assert 400 <= answer.status_code < 500, answer.text
    detail = json.loads(answer.content)["detail"]  # the body itself is valid JSON
    assert detail
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert httpx.get(f"{server.url}/collections/docs").json()["documents"] == 5


def test_the_detail_says_what_and_where(server: RunningServer) -> None:
    surrogate = httpx.post(
        server.url + "/search",
        content=rb'{"collection": "docs", "queries": ["ok", "\udfff"]}',
        headers=JSON,
    )
    assert surrogate.status_code == 400
    assert "body.queries[1]" in surrogate.json()["detail"]
    assert "surrogate" in surrogate.json()["detail"]
    huge = httpx.post(
        server.url + "/search", content=b'{"collection": "docs", "k": 1e400}', headers=JSON
    )
    assert huge.status_code == 400 and "1e400" in huge.json()["detail"]


def test_text_with_valid_astral_characters_is_still_served(server: RunningServer) -> None:
    # A surrogate *pair* is one character (an emoji): valid, and answered in full.
    body = rb'{"collection": "docs", "query": "cat \ud83d\ude00", "k": 1}'
    answer = httpx.post(server.url + "/search", content=body, headers=JSON)
    assert answer.status_code == 200
    assert answer.json()["results"][0]["query"] == "cat \U0001f600"


def test_strange_paths_and_queries_get_a_4xx_in_json(server: RunningServer) -> None:
    for path in (
        "/collections/docs/documents/%ED%A0%80",
        "/collections/docs/documents/%FF",
        "/collections/%00",
        "/collections/docs/documents/" + "x" * 2000,
    ):
        answer = httpx.get(server.url + path)
        assert 400 <= answer.status_code < 500, path
        assert "detail" in answer.json()


def test_malformed_http_gets_a_json_400(server: RunningServer) -> None:
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert "malformed" in json.loads(body)["detail"]
