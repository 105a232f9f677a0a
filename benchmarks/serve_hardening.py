"""`densekit serve` against hostile clients (the `hardening` section of benchmarks/serve.py;
the slow clients and the timed-out request are in benchmarks/serve_slow.py).

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

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import serve_slow
from _common import BUILD, QUICK, SHARED
from serve_process import running_server, scratch_copy, server_5xx

import densekit
from densekit.retrieve import Collection

DOCUMENTS = 300
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


# QUICK: short timeouts and measurements, so the slow clients are cut sooner: the same checks.
TIMEOUTS = (
    ("--timeout", "3", "--header-timeout", "3", "--body-timeout", "5")
    if QUICK
    else ("--timeout", "10")
)
SLOW_MEASURE_S = 2.0 if QUICK else 8.0


def run_hardening(queries: list[str], cases: int) -> dict:
    source = small_collection(BUILD, SHARED)
    directory = scratch_copy(source, "serve-hardening-run")
    with Collection(directory) as collection:
        target = collection.doc_ids[0]
        texts = [d.text for d in collection.documents.get_rows(list(range(50)))]
    logs = BUILD.parent / "logs"
    started = time.perf_counter()
    with running_server(directory, *TIMEOUTS) as url:
        results: dict = {
            "server": f"densekit serve on 127.0.0.1, no API key, {' '.join(TIMEOUTS)}, "
            "default limits otherwise",
            "collection": f"SciFact, first {DOCUMENTS} documents, minilm, hybrid",
        }
        results["cross_site"] = cross_site(url, "scifact", target)
        print("cross_site", json.dumps(results["cross_site"]), flush=True)
        results["hostile_bodies"] = hostile_bodies(url, cases)
        print("hostile_bodies", json.dumps(results["hostile_bodies"]), flush=True)
        results["schemathesis"] = st_run(
            url,
            max(5, cases // 4),
            logs / "serve-hardening-st.log",
            "--mode",
            "all",
            "--generation-allow-x00",
            "true",
        )
        print("schemathesis", json.dumps(results["schemathesis"]), flush=True)
        results["server_5xx_from_hostile_input"] = server_5xx(url)
        results["slow_clients"] = serve_slow.slow_clients(url, queries, SLOW_MEASURE_S)
        print("slow_clients", json.dumps(results["slow_clients"]), flush=True)
        results["timed_out_request"] = serve_slow.timed_out_request(url, texts)
        print("timed_out_request", json.dumps(results["timed_out_request"]), flush=True)
        # Over the whole run, less the one 503 expected: the timed-out request's own.
        expected = int(results["timed_out_request"]["status"] == 503)
        results["server_5xx_other_than_the_timeout"] = server_5xx(url) - expected
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results
