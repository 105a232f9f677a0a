"""Web pages on other sites cannot change a served collection: no form posts, no cross-origin
writes, and no writes at all without a key where other machines can reach the server."""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from browser import chromium_page, needs_chromium
from serving import API_KEY, build_hashing_collection, hashing_state

from densekit.serve.connections import listen
from densekit.serve.server import announcement

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
EVIL = "https://evil.example"


@pytest.fixture
def page():
    with chromium_page() as opened:
        yield opened


@pytest.fixture
def open_server(tmp_path: Path, serve_state) -> str:
    """The default server: loopback, no API key (writes open to this machine)."""
    state = hashing_state({"docs": build_hashing_collection(tmp_path / "docs")}, api_key=None)
    return serve_state(state)


def stored(url: str, doc_id: str) -> bool:
    return httpx.get(f"{url}/collections/docs/documents/{doc_id}").status_code == 200


def test_a_cross_site_form_post_cannot_delete(open_server: str) -> None:
    # What any page can make a visitor's browser send: the form-urlencoded body is JSON text.
    attack = httpx.post(
        open_server + "/collections/docs/delete",
        content='{"ids":["d1"]}',
        headers={**FORM, "Origin": EVIL},
    )
    assert attack.status_code == 403 and "another site" in attack.json()["detail"]
    assert stored(open_server, "d1")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        None,  # a body with no declared type
        "application/json-patch",
    ],
)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/collections/docs/delete", '{"ids": ["d1"]}'),
        ("/collections/docs/documents", '{"documents": [{"id": "n1", "text": "new"}]}'),
        ("/search", '{"collection": "docs", "query": "cat"}'),
        ("/v1/embeddings", '{"model": "hashing", "input": "cat"}'),
    ],
)
def test_bodies_not_declared_json_get_415(open_server, path, body, content_type) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    # httpx adds no type of its own for raw bytes
    answer = httpx.post(open_server + path, content=body.encode(), headers=headers)
    assert answer.status_code == 415
    assert "application/json" in answer.json()["detail"]
    assert stored(open_server, "d1") and not stored(open_server, "n1")


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "null"},  # sandboxed frames, file:// pages
        {"Origin": "http://127.0.0.1:1"},  # another port of this machine is another site
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_cross_origin_json_writes_are_refused(open_server: str, headers: dict) -> None:
    for path, body in (
        ("/collections/docs/delete", {"ids": ["d1"]}),
        ("/collections/docs/documents", {"documents": [{"id": "n1", "text": "new"}]}),
    ):
        answer = httpx.post(open_server + path, json=body, headers=headers)
        assert answer.status_code == 403, (path, headers)
    assert stored(open_server, "d1") and not stored(open_server, "n1")


def test_its_own_pages_and_plain_clients_may_write(open_server: str) -> None:
    own = {"Origin": open_server, "Sec-Fetch-Site": "same-origin"}
    added = httpx.post(
        open_server + "/collections/docs/documents",
        json={"documents": [{"id": "n1", "text": "new"}]},
        headers=own,
    )
    assert added.status_code == 200 and stored(open_server, "n1")
    plain = httpx.post(open_server + "/collections/docs/delete", json={"ids": ["n1"]})
    assert plain.status_code == 200 and not stored(open_server, "n1")
    # Reads by GET stay open to links from anywhere.
    assert httpx.get(open_server + "/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


def test_an_allowed_origin_may_call_and_read_the_answers(tmp_path: Path, serve_state) -> None:
    trusted = "https://search.example.com"
    state = hashing_state({"docs": build_hashing_collection(tmp_path / "docs")}, api_key=None)
    state.allowed_origins = [trusted]
    url = serve_state(state)
    preflight = httpx.options(
        url + "/search",
        headers={
            "Origin": trusted,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == trusted
    search = {"collection": "docs", "query": "cat"}
    cross = {"Origin": trusted, "Sec-Fetch-Site": "cross-site"}
    answer = httpx.post(url + "/search", json=search, headers=cross)
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == trusted
    deleted = httpx.post(url + "/collections/docs/delete", json={"ids": ["d1"]}, headers=cross)
    assert deleted.status_code == 200
    other = httpx.post(url + "/search", json=search, headers={"Origin": EVIL})
    assert other.status_code == 403


def test_without_a_key_a_server_others_can_reach_serves_reads_only(
    tmp_path: Path, serve_state
) -> None:
    directory = build_hashing_collection(tmp_path / "docs")
    state = hashing_state({"docs": directory}, api_key=None)
    state.host = "0.0.0.0"  # as bound by --host 0.0.0.0 (this test listens on loopback)
    url = serve_state(state)
    refused = httpx.post(url + "/collections/docs/delete", json={"ids": ["d1"]})
    assert refused.status_code == 403 and "--api-key-file" in refused.json()["detail"]
    assert stored(url, "d1")
    search = httpx.post(url + "/search", json={"collection": "docs", "query": "cat"})
    assert search.status_code == 200

    keyed = hashing_state({"docs": directory}, api_key=API_KEY)
    keyed.host = "0.0.0.0"
    keyed_url = serve_state(keyed)
    auth = {"Authorization": f"Bearer {API_KEY}"}
    deleted = httpx.post(keyed_url + "/collections/docs/delete", json={"ids": ["d1"]}, headers=auth)
    assert deleted.status_code == 200


def test_the_start_message_says_when_writes_are_refused(tmp_path: Path) -> None:
    directory = build_hashing_collection(tmp_path / "docs")
    state = hashing_state({"docs": directory}, api_key=None)
    # Bound, never listening: nothing can connect to it.
    for host, read_only in (("0.0.0.0", True), ("127.0.0.1", False)):
        sock = listen(host, 0)
        try:
            state.host = host
            lines = announcement(state, sock).splitlines()
        finally:
            sock.close()
        assert lines[0].startswith(f"densekit: serving docs on http://{host}:")
        warnings = [line for line in lines if "reads only" in line]
        assert len(warnings) == (1 if read_only else 0)
        notes = [line for line in lines if "writes are taken from this machine only" in line]
        assert len(notes) == (0 if read_only else 1)
    state.close()


# What a page on another site can make its visitor's browser send without asking the target:
# "simple" requests (a form's types, no custom headers), whose answers it cannot read but whose
# effects happen all the same. The JSON one needs the target's permission (a preflight).
EVIL_PAGE = """<!doctype html><title>loading</title><script>
const target = "TARGET";
const simple = (path, type, body) =>
  fetch(target + path, {method: "POST", mode: "no-cors", headers: {"Content-Type": type}, body});
Promise.allSettled([
  simple("/collections/docs/delete", "application/x-www-form-urlencoded", '{"ids":["d1"]}'),
  simple("/collections/docs/delete", "text/plain", '{"ids":["d2"]}'),
  fetch(target + "/collections/docs/delete", {method: "POST", mode: "no-cors", body:
        new Blob(['{"ids":["d3"]}'])}),
  fetch(target + "/collections/docs/documents", {method: "POST",
        headers: {"Content-Type": "application/json"},
        body: '{"documents": [{"id": "planted", "text": "from another site"}]}'}),
]).then(() => { document.title = "done"; });
</script>"""


@needs_chromium
def test_a_page_on_another_site_cannot_write_through_a_browser(
    open_server: str, tmp_path: Path, page
) -> None:
    site = tmp_path / "evil-site"
    site.mkdir()
    (site / "index.html").write_text(EVIL_PAGE.replace("TARGET", open_server))
    handler = partial(SimpleHTTPRequestHandler, directory=str(site))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as evil:
        threading.Thread(target=evil.serve_forever, daemon=True).start()
        # "localhost" and "127.0.0.1" are different sites to the browser.
        page.goto(f"http://localhost:{evil.server_address[1]}/index.html")
        page.wait_for_function("document.title === 'done'", timeout=30_000)
        evil.shutdown()
    for doc_id in ("d1", "d2", "d3"):
        assert stored(open_server, doc_id), doc_id
    assert not stored(open_server, "planted")
    metrics = httpx.get(open_server + "/metrics").text
    # The simple ones arrived and were turned away before routing, counted by their endpoint.
    refused = (
        'densekit_requests_total{method="POST",route="/collections/{name}/delete",status="403"}'
    )
    assert refused in metrics
