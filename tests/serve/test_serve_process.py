"""`densekit serve` as a process: the port it says is the port it bound, and a port it cannot
take is one line and exit status 2, before anything is loaded or announced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import DOCUMENTS, write_jsonl

from densekit.retrieve import build_collection
from densekit.serve.connections import listen
from densekit.store import BuildOptions

SERVE = [sys.executable, "-m", "densekit.cli.main", "serve"]


@pytest.fixture
def lexical_collection(tmp_path: Path) -> Path:
    """A BM25-only collection: served without loading any model."""
    corpus = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    out = tmp_path / "docs"
    options = BuildOptions(retriever="bm25", progress=False, cache_dir=None)
    build_collection(corpus, out, options).close()
    return out


@contextmanager
def serving(collection: Path) -> Iterator[str]:
    """`densekit serve` of ``collection`` on a free port; its URL, from the line it prints."""
    process = subprocess.Popen(
        [*SERVE, str(collection), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("densekit: serving docs on http://127.0.0.1:"), line
        yield line.split(" on ", 1)[1].split()[0].rstrip("/")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def test_port_zero_serves_on_the_port_it_prints(lexical_collection: Path) -> None:
    with serving(lexical_collection) as url:
        port = int(url.rsplit(":", 1)[1])
        assert port != 0
        assert httpx.get(url + "/health", timeout=30).json()["collections"] == 1
        search = {"collection": "docs", "query": "salmon", "k": 1}
        hits = httpx.post(url + "/search", json=search, timeout=30).json()
        assert hits["results"][0]["hits"][0]["id"] == "d4"


def test_a_busy_port_is_one_line_and_exit_status_2(lexical_collection: Path) -> None:
    busy = listen("127.0.0.1", 0)
    busy.listen()
    port = busy.getsockname()[1]
    try:
        done = subprocess.run(
            [*SERVE, str(lexical_collection), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    finally:
        busy.close()
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines == [
        f"densekit: error: cannot listen on 127.0.0.1:{port}: the port is in use (another "
        "server?); stop it or choose another --port (--port 0 picks a free one)"
    ]


def test_an_address_it_cannot_listen_on_is_one_line_too(lexical_collection: Path) -> None:
    done = subprocess.run(
        [*SERVE, str(lexical_collection), "--host", "no-such-host.invalid", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("densekit: error: cannot listen on no-such-host.invalid:0")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--allow-origin", "evil.example"], "--allow-origin 'evil.example': give an origin"),
        (["--allow-origin", "https://a.example/path"], "give an origin, scheme://host[:port]"),
        (["--allow-origin", "https://a.example:99999"], "the port must be 1 to 65535"),
        (["--allow-origin", "https://a.example:http"], "the port must be 1 to 65535"),
        (["--header-timeout", "0"], "--header-timeout must be in (0, 3600] seconds"),
        (["--body-timeout", "-1"], "--body-timeout must be in (0, 3600] seconds"),
        (["--max-connections", "0"], "must be at least 1"),
        (["--max-body-mb", "nan"], "--max-body-mb must be a finite number of MiB, at least"),
        (["--max-body-mb", "inf"], "--max-body-mb must be a finite number of MiB, at least"),
        (["--max-body-mb", "-1"], "at least 0.001 (1 KiB), got -1"),
    ],
)
def test_bad_limits_and_origins_are_one_line(
    lexical_collection: Path, flags: list[str], message: str
) -> None:
    done = subprocess.run(
        [*SERVE, str(lexical_collection), "--port", "0", *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert message in done.stderr.splitlines()[-1]  # after argparse's usage line, if any


def test_connections_are_accepted_without_nagles_delay() -> None:
    """A response's head and body go out at once: with Nagle's algorithm on, the body waits
    for the client's delayed ACK of the head (~40 ms a request on Linux)."""
    import socket

    server = listen("127.0.0.1", 0)
    server.listen()
    # asyncio turns Nagle off on accepted sockets only when they say they are TCP.
    assert server.proto == socket.IPPROTO_TCP
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    try:
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        for sock in (accepted, client, server):
            sock.close()


def test_a_served_collection_searches_its_token_vectors(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    options = BuildOptions(retriever="bm25", multivector="minilm", progress=False, cache_dir=None)
    with build_collection(corpus, tmp_path / "docs", options) as built:
        expected = [hit.id for hit in built.search("salmon rivers", 3, retriever="multivector")]
    with serving(tmp_path / "docs") as url:
        search = {"collection": "docs", "query": "salmon rivers", "retriever": "multivector"}
        answer = httpx.post(url + "/search", json={**search, "k": 3}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert [hit["id"] for hit in answer.json()["results"][0]["hits"]] == expected
