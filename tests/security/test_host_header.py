"""A loopback server answers only requests addressed to a name of this machine (or of a site
it was told to trust): a web page that points its own domain at 127.0.0.1 (DNS rebinding) is
the same origin as the server to the browser, and only the Host header gives it away."""

from __future__ import annotations

from pathlib import Path

import httpx
from serving import build_hashing_collection, hashing_state

TRUSTED = "https://search.example.com"


def open_state(tmp_path: Path):
    return hashing_state({"docs": build_hashing_collection(tmp_path / "docs")}, api_key=None)


def test_a_rebound_page_is_refused_in_json_saying_what_to_do(tmp_path: Path, serve_state) -> None:
    url = serve_state(open_state(tmp_path))
    port = url.rsplit(":", 1)[1]
    rebound = {"Host": f"attacker.example:{port}", "Origin": f"http://attacker.example:{port}"}
    deleted = httpx.post(url + "/collections/docs/delete", json={"ids": ["d1"]}, headers=rebound)
    assert deleted.status_code == 400
    detail = deleted.json()["detail"]
    assert "'attacker.example:" in detail and "--allow-origin" in detail
    assert httpx.get(url + "/collections/docs/documents/d1").status_code == 200
    assert httpx.get(url + "/health", headers={"Host": "attacker.example"}).status_code == 400
    for name in ("localhost", "127.0.0.1", "[::1]"):
        assert httpx.get(url + "/health", headers={"Host": f"{name}:{port}"}).status_code == 200


def test_every_loopback_address_is_a_name_of_this_machine(tmp_path: Path, serve_state) -> None:
    # A server started with --host 127.0.0.2 is reached as http://127.0.0.2:PORT/.
    url = serve_state(open_state(tmp_path))
    port = url.rsplit(":", 1)[1]
    for name in ("127.0.0.2", "127.1.2.3", "LOCALHOST"):
        answer = httpx.get(url + "/health", headers={"Host": f"{name}:{port}"})
        assert answer.status_code == 200, name


def test_a_proxy_passing_an_allowed_sites_name_is_answered(tmp_path: Path, serve_state) -> None:
    # nginx with `proxy_set_header Host $host` in front, started with --allow-origin.
    state = open_state(tmp_path)
    state.allowed_origins = [TRUSTED]
    url = serve_state(state)
    own_page = {"Host": "search.example.com", "Origin": TRUSTED}
    answer = httpx.post(
        url + "/search", json={"collection": "docs", "query": "cat"}, headers=own_page
    )
    assert answer.status_code == 200
    other = httpx.get(url + "/health", headers={"Host": "elsewhere.example.com"})
    assert other.status_code == 400
