"""Every id the id rules accept can be written, fetched and deleted over HTTP (a real server on
loopback); ids the rules refuse are 4xx naming the request field."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from serving import API_KEY, RunningServer, build_hashing_collection, hashing_state

from densekit.corpus import readers as readers_module
from densekit.files.ids import MAX_ID_CHARS

AUTH = {"Authorization": f"Bearer {API_KEY}"}
IDS = [
    "a/b",
    "/leading/slash",
    "trailing/",
    "a//b",
    "a/../b",
    "./x",
    "50%",
    "%2F",
    "what?x=1",
    "c#1",
    "two words",
    "café",
    "日本語",
    "a\\b",
    "+plus;semi",
    "...",
    "x" * MAX_ID_CHARS,
]


def document_url(server: RunningServer, doc_id: str) -> str:
    return f"{server.url}/collections/docs/documents/{quote(doc_id, safe='')}"


def write(server: RunningServer, body: dict) -> httpx.Response:
    return httpx.post(
        server.url + "/collections/docs/documents", json=body, headers=AUTH, timeout=30
    )


def delete(server: RunningServer, ids: list) -> httpx.Response:
    return httpx.post(
        server.url + "/collections/docs/delete", json={"ids": ids}, headers=AUTH, timeout=30
    )


def test_every_accepted_id_is_written_fetched_and_deleted(server: RunningServer) -> None:
    documents = [{"id": doc_id, "text": f"text {n}"} for n, doc_id in enumerate(IDS)]
    assert write(server, {"documents": documents, "mode": "add"}).status_code == 200
    for n, doc_id in enumerate(IDS):
        fetched = httpx.get(document_url(server, doc_id), timeout=30)
        assert fetched.status_code == 200, doc_id
        assert fetched.json()["id"] == doc_id and fetched.json()["text"] == f"text {n}"
    assert delete(server, IDS).json()["deleted"] == len(IDS)
    for doc_id in IDS:
        assert httpx.get(document_url(server, doc_id), timeout=30).status_code == 404, doc_id


@pytest.mark.parametrize(
    ("bad_id", "status", "message"),
    [
        (7, 422, "valid string"),
        (True, 422, "valid string"),
        ({"a": 1}, 422, "valid string"),
        ("x" * (MAX_ID_CHARS + 1), 422, "at most"),
        ("tab\there", 400, "request.documents[1]: id 'tab\\there' holds a control character"),
        ("new\nline", 400, "request.documents[1]: id 'new\\nline' holds a control character"),
        ("nul\x00", 400, "control character"),
        (" padded", 400, "starts or ends with whitespace"),
        ("..", 400, "URL paths drop"),
    ],
)
def test_ids_the_rules_refuse_are_4xx_naming_the_document(
    server: RunningServer, bad_id: object, status: int, message: str
) -> None:
    body = {"documents": [{"id": "fine", "text": "t"}, {"id": bad_id, "text": "t"}]}
    answer = write(server, body)
    assert answer.status_code == status
    assert message in str(answer.json()["detail"])
    assert httpx.get(document_url(server, "fine"), timeout=30).status_code == 404


def test_ids_written_before_the_rules_are_fetched_and_deleted(
    tmp_path: Path, serve_state, monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy = ["tab\there", "nul\x00end", " padded "]
    with monkeypatch.context() as patch:
        patch.setattr(readers_module, "check_id", lambda value, where: value)
        records = [{"_id": doc_id, "text": f"legacy {doc_id}"} for doc_id in [*legacy, "ok"]]
        directory = build_hashing_collection(tmp_path / "docs", records)
    state = hashing_state({"docs": directory})
    server = RunningServer(serve_state(state), state, directory)
    for doc_id in legacy:
        answer = httpx.get(document_url(server, doc_id), timeout=30)
        assert answer.status_code == 200 and answer.json()["id"] == doc_id, answer.text
    assert delete(server, legacy).json()["deleted"] == len(legacy)
