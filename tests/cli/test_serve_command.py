"""`densekit serve` as users run it: a real process, a real model, signals, bad arguments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from required import require
from serving import free_port
from test_cli import run_cli

SERVE = [sys.executable, "-m", "densekit.cli.main", "serve"]


def static_collection(capsys, tiny_beir: Path, out: Path) -> Path:
    require("static_model")
    flags = ["--model", "static", "--quiet", "--no-cache"]
    assert run_cli(capsys, "index", tiny_beir / "corpus.jsonl", "--out", out, *flags)[0] == 0
    return out


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.stderr.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("the server did not come up")


def started_server(directory: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """`densekit serve docs=DIR FLAGS` on a free port, its output piped: the process, its URL."""
    port = free_port()
    process = subprocess.Popen(
        [*SERVE, f"docs={directory}", "--port", str(port), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    return process, f"http://127.0.0.1:{port}"


def test_serve_answers_then_finishes_in_flight_requests_on_sigterm(
    capsys, tiny_beir: Path, tmp_path: Path
) -> None:
    directory = static_collection(capsys, tiny_beir, tmp_path / "static-docs")
    # A long batching wait keeps a request in flight while the signal arrives.
    process, url = started_server(directory, "--max-wait-ms", "1000")
    try:
        wait_until_up(url, process)
        page = httpx.get(url + "/")
        assert page.status_code == 200 and "densekit search" in page.text
        answers: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    url + "/search", json={"collection": "docs", "query": "vitamin"}, timeout=30
                )
            )
        )
        request.start()
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        request.join(timeout=30)
        assert answers and answers[0].status_code == 200
        assert answers[0].json()["results"][0]["hits"]
        # uvicorn re-raises the signal once it has shut down cleanly: the usual exit for it.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_serve_access_log_prints_a_line_per_request(
    capsys, tiny_beir: Path, tmp_path: Path
) -> None:
    directory = static_collection(capsys, tiny_beir, tmp_path / "static-docs")
    process, url = started_server(directory, "--access-log")
    try:
        wait_until_up(url, process)
        assert httpx.post(url + "/search", json={"collection": "docs", "query": "x"}).is_success
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert '"POST /search HTTP/1.1" 200' in out
    assert '"GET /health HTTP/1.1" 200' in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing-folder"], "no such collection directory"),
        (["a=.", "a=."], "two collections would be named 'a'"),
        (["--max-wait-ms", "5000", "x"], "--max-wait-ms must be 0 to 1000"),
        (["--port", "70000", "x"], "--port must be 0 to 65535"),
    ],
)
def test_serve_refuses_bad_arguments_without_a_traceback(capsys, arguments, message) -> None:
    code, _, err = run_cli(capsys, "serve", *arguments)
    assert code == 2 and message in err and "Traceback" not in err


def test_serve_refuses_a_short_api_key_file(capsys, tmp_path: Path, tiny_beir: Path) -> None:
    key = tmp_path / "key.txt"
    key.write_text("short\n")
    directory = tmp_path / "bm25-docs"
    run_cli(
        capsys,
        "index",
        tiny_beir / "corpus.jsonl",
        "--out",
        directory,
        "--retriever",
        "bm25",
        "--quiet",
    )
    code, _, err = run_cli(capsys, "serve", str(directory), "--api-key-file", str(key))
    assert code == 2 and "at least 16 characters" in err
