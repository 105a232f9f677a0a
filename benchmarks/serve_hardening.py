"""`densekit serve` against hostile clients (the `hardening` section of benchmarks/serve.py).

All against one default server (loopback, no API key: the one a web page could attack) over a
small SciFact MiniLM collection, with `--timeout 10`:

- Cross-site: every write endpoint with form, text, multipart, missing and JSON bodies, from
  other origins (Origin, Sec-Fetch-Site) and from none: writes accepted from another site
  (must be 0), 5xx, and whether the targeted document survived.
- Hostile bodies: schemathesis generates each POST operation's bodies from the server's spec;
  each is re-serialised with one or two values swapped for what Python's JSON reader takes but
  JSON does not carry (lone surrogates as escapes or raw bytes, invalid UTF-8, NaN,
  Infinity, 1e400, 5,000-digit integers): 5xx and answers that are not JSON (must be 0).
- schemathesis `st run` in all modes (positive and negative), NUL bytes allowed.
- Slowloris: 600 connections to 127.0.0.1 send part of a request head and stop, 50 more send a
  body one byte a second; meanwhile a client searches: its latency against a quiet baseline,
  then when the server cut the slow ones.
- A timed-out request: 1,024 long `/v1/embeddings` inputs; after its 503, how many model calls
  still ran for it and how soon a one-text request was answered.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

import densekit

DOCUMENTS = 300
SLOW_HEADS = 600
SLOW_BODIES = 50
HOSTILE_STRINGS = [
    rb'"\ud800"',
    rb'"a\udfffb"',
    rb'"\udc00\ud800"',  # a pair in the wrong order: two lone halves
    b'"\xed\xa0\x80"',  # a surrogate's UTF-8 bytes
    b'"\xff\xfe"',  # not UTF-8
    b'"caf\xe9"',
    rb'"\u0000"',  # NUL: valid JSON, must be handled
]
HOSTILE_NUMBERS = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"9" * 5000,
    b"-0",
]


def small_collection(build: Path, shared: Path, documents: int = DOCUMENTS) -> Path:
    """The first ``documents`` SciFact documents, MiniLM, hybrid; built once."""
    out = build / f"serve-hardening-{documents}"
    if (out / "manifest.json").exists():
        return out
    corpus = build / f"serve-hardening-{documents}.jsonl"
    build.mkdir(parents=True, exist_ok=True)
    with (shared / "scifact" / "corpus.jsonl").open(encoding="utf-8") as source:
        corpus.write_text("".join(line for _, line in zip(range(documents), source, strict=False)))
    options = densekit.BuildOptions(model="minilm", retriever="hybrid", cache_dir=None)
    densekit.build_collection(corpus, out, options, overwrite=True).close()
    return out


def server_5xx(url: str) -> int:
    total = 0
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("densekit_requests_total") and 'status="5' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def _is_json(answer: httpx.Response) -> bool:
    try:
        json.loads(answer.content)
    except ValueError:
        return False
    return True


# --- cross-site -------------------------------------------------------------------------------


def cross_site(url: str, collection: str, target_id: str) -> dict[str, Any]:
    port = url.rsplit(":", 1)[1]
    writes = {
        f"/collections/{collection}/delete": {"ids": [target_id]},
        f"/collections/{collection}/documents": {
            "documents": [{"id": "cross-site-added", "text": "written from another site"}]
        },
    }
    types = [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        None,
        "application/json",
    ]
    senders = [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": f"http://localhost:{int(port) + 1}"},
        {"Origin": "http://127.0.0.1.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
        {},  # no browser headers: a form post by curl, or a page's "simple" request
    ]
    statuses: Counter[int] = Counter()
    accepted = attempts = non_json = 0
    with httpx.Client(base_url=url, timeout=60) as http:
        for path, body in writes.items():
            for content_type in types:
                for sender in senders:
                    if content_type == "application/json" and not sender:
                        continue  # a plain JSON client: allowed, the control below
                    headers = dict(sender)
                    if content_type:
                        headers["Content-Type"] = content_type
                    answer = http.post(path, content=json.dumps(body), headers=headers)
                    attempts += 1
                    statuses[answer.status_code] += 1
                    accepted += answer.is_success
                    non_json += not _is_json(answer)
        rebinding = http.get("/health", headers={"Host": "evil.example"}).status_code
        survived = http.get(f"/collections/{collection}/documents/{target_id}").status_code == 200
        planted = http.get(f"/collections/{collection}/documents/cross-site-added")
        own = {"Origin": url, "Sec-Fetch-Site": "same-origin"}
        control = [
            http.post(
                f"/collections/{collection}/documents",
                json={"documents": [{"id": "same-origin", "text": "from its own page"}]},
                headers=own,
            ).status_code,
            http.post(
                f"/collections/{collection}/delete", json={"ids": ["same-origin"]}
            ).status_code,
        ]
    return {
        "write_attempts_from_other_sites_or_not_json": attempts,
        "accepted": accepted,
        "statuses": dict(sorted(statuses.items())),
        "answers_not_json": non_json,
        "target_document_survived": survived,
        "planted_document_absent": planted.status_code == 404,
        "foreign_host_header_status": rebinding,
        "same_origin_and_plain_json_writes_statuses": control,
    }


# --- hostile bodies ---------------------------------------------------------------------------


def _serialise(value: Any, path: tuple, swaps: dict[tuple, bytes]) -> bytes:
    if path in swaps:
        return swaps[path]
    if isinstance(value, dict):
        items = (
            json.dumps(str(k)).encode() + b":" + _serialise(v, (*path, k), swaps)
            for k, v in value.items()
        )
        return b"{" + b",".join(items) + b"}"
    if isinstance(value, list):
        return (
            b"[" + b",".join(_serialise(v, (*path, i), swaps) for i, v in enumerate(value)) + b"]"
        )
    return json.dumps(value).encode()


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))] or [path]
    return [path]


def hostile_bodies(url: str, cases_per_operation: int) -> dict[str, Any]:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    statuses: Counter[int] = Counter()
    tally = {"requests": 0, "server_errors": 0, "answers_not_json": 0}
    tokens = HOSTILE_STRINGS + HOSTILE_NUMBERS
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as http:

        def record(answer: httpx.Response) -> None:
            tally["requests"] += 1
            statuses[answer.status_code] += 1
            tally["server_errors"] += answer.status_code >= 500
            tally["answers_not_json"] += not _is_json(answer)

        def check(operation: Any) -> Any:
            path = operation.path.replace("{name}", "scifact")

            @given(case=operation.as_strategy(), data=st.data())
            @settings(
                max_examples=cases_per_operation,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def send(case: Any, data: Any) -> None:
                body = case.body if isinstance(case.body, dict | list) and case.body else {}
                if not body:  # nothing to swap: give it one field
                    body = {"query": None}
                chosen = data.draw(st.lists(st.sampled_from(_leaves(body)), min_size=1, max_size=2))
                swaps = {leaf: data.draw(st.sampled_from(tokens)) for leaf in chosen}
                headers = {"Content-Type": "application/json"}
                record(http.post(path, content=_serialise(body, (), swaps), headers=headers))

            return send

        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.method.upper() == "POST":
                check(operation)()
        for path in ("%ED%A0%80", "%FF%FE", "%00", "a%2F..%2F..%2Fmanifest.json", "x" * 5000):
            record(http.get(f"/collections/scifact/documents/{path}"))
    return {
        "cases_per_post_operation": cases_per_operation,
        **tally,
        "statuses": dict(sorted(statuses.items())),
        "seconds": round(time.perf_counter() - started, 1),
    }


def st_run(url: str, cases: int, log: Path, *extra: str) -> dict[str, Any]:
    """schemathesis' own runner against ``url``: its exit code and the last lines it printed."""
    started = time.perf_counter()
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        url + "/openapi.json",
        "--max-examples",
        str(cases),
        "--request-timeout",
        "120",
        "--no-color",
        *extra,
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(completed.stdout + completed.stderr)
    return {
        "max_examples_per_operation": cases,
        "options": list(extra),
        "exit_code": completed.returncode,
        "seconds": round(time.perf_counter() - started, 1),
        "output_tail": completed.stdout.strip().splitlines()[-6:],
    }


# --- slow clients -----------------------------------------------------------------------------


def _search_latencies(url: str, seconds: float, queries: list[str]) -> dict[str, Any]:
    latencies, statuses = [], Counter()
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=60) as http:
        i = 0
        while time.monotonic() < deadline:
            body = {"collection": "scifact", "query": queries[i % len(queries)], "k": 10}
            started = time.perf_counter()
            answer = http.post("/search", json=body, headers={"Connection": "close"})
            latencies.append(time.perf_counter() - started)
            statuses[answer.status_code] += 1
            i += 1
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "statuses": dict(statuses),
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
    }


def slow_clients(url: str, queries: list[str], measure_s: float = 8.0) -> dict[str, Any]:
    """Hold SLOW_HEADS unfinished heads and SLOW_BODIES trickled bodies while a client searches;
    then wait for the server to cut them."""
    host, port = url.removeprefix("http://").split(":")
    baseline = _search_latencies(url, measure_s / 2, queries)
    selector = selectors.DefaultSelector()
    opened = time.monotonic()
    bodies: list[socket.socket] = []
    for i in range(SLOW_HEADS + SLOW_BODIES):
        sock = socket.create_connection((host, int(port)), timeout=30)
        if i < SLOW_HEADS:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            kind = "head"
        else:
            sock.sendall(
                b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n{"
            )
            bodies.append(sock)
            kind = "body"
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, {"kind": kind, "answer": b""})
    held_for = time.monotonic() - opened
    during = _search_latencies(url, measure_s, queries)
    closed: dict[str, list[float]] = {"head": [], "body": []}
    answers: Counter[str] = Counter()
    open_when_measured = len(selector.get_map())
    deadline = time.monotonic() + 90
    next_trickle = time.monotonic()
    while selector.get_map() and time.monotonic() < deadline:
        if time.monotonic() >= next_trickle:  # one byte a second from each slow body
            for sock in bodies:
                if sock.fileno() != -1:
                    with contextlib.suppress(OSError):
                        sock.send(b" ")
            next_trickle += 1.0
        for key, _ in selector.select(timeout=0.2):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                chunk = b""
            if chunk:
                key.data["answer"] += chunk
                continue
            selector.unregister(sock)
            closed[key.data["kind"]].append(time.monotonic() - opened)
            answers[key.data["answer"].split(b"\r\n", 1)[0].decode("latin-1") or "closed"] += 1
            sock.close()
    still_open = len(selector.get_map())
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    return {
        "slow_heads": SLOW_HEADS,
        "slow_bodies": SLOW_BODIES,
        "seconds_to_open_them": round(held_for, 2),
        "open_while_measured": open_when_measured,
        "searches_quiet": baseline,
        "searches_while_held": during,
        "heads_cut_after_s": _span(closed["head"]),
        "bodies_cut_after_s": _span(closed["body"]),
        "answers_to_slow_connections": dict(answers),
        "still_open_after_90_s": still_open,
    }


def _span(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"first": round(min(values), 1), "last": round(max(values), 1), "count": len(values)}


# --- a timed-out request ----------------------------------------------------------------------


def _model_calls(url: str) -> int:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("densekit_encode_batch_size_count"):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def timed_out_request(url: str, texts: list[str], inputs: int = 1024) -> dict[str, Any]:
    long_inputs = [" ".join(texts[i % len(texts)].split()[:300]) for i in range(inputs)]
    before = _model_calls(url)
    started = time.perf_counter()
    answer = httpx.post(
        url + "/v1/embeddings",
        json={"model": "minilm", "input": long_inputs},
        timeout=600,
    )
    answered_s = time.perf_counter() - started
    at_answer = _model_calls(url)
    probe_started = time.perf_counter()
    probe = httpx.post(
        url + "/v1/embeddings", json={"model": "minilm", "input": "probe"}, timeout=600
    )
    probe_s = time.perf_counter() - probe_started
    after_probe = _model_calls(url)
    return {
        "inputs": inputs,
        "status": answer.status_code,
        "answered_after_s": round(answered_s, 2),
        "model_calls_before_answer": at_answer - before,
        "model_calls_for_it_after_answer": after_probe - at_answer - 1,  # less the probe's own
        "pieces_of_64": -(-inputs // 64),
        "probe_status": probe.status_code,
        "probe_answered_after_s": round(probe_s, 2),
    }
