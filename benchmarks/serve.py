"""`densekit serve` on loopback: load at 1-64 clients, micro-batching on vs off, fuzzing
against the OpenAPI spec, and a soak with a writer.

    .venv/bin/python benchmarks/serve.py [--requests 20] [--soak-seconds 60] [--fuzz-cases 50]
        [--only load|fuzz|soak|hardening]

The server is a real `densekit serve` process over the SciFact MiniLM collection (dense
retrieval, so every search encodes its query); the load comes from asyncio clients in this
process (aiohttp), each sending its requests one after another over a kept-alive connection,
with SciFact test queries. Both share this machine's cores, as they would on one box.

- Load: QPS, p50/p99 latency and errors for 1, 4, 16 and 64 concurrent clients with
  batching on; the same at 16 (and 64) clients with `--no-batching`; the throughput ratio and
  whether every query got the same ranking both ways.
- Fuzz: schemathesis (`st run`) against /openapi.json of a scratch copy (writes allowed, with
  the key): cases run, 5xx answers, failed checks.
- Soak: one writer adds and deletes documents of a scratch copy while 4 clients search, for a
  bounded time; afterwards the collection must hold exactly the expected ids, once each.
- Hardening: cross-site writes, hostile JSON, slowloris and a timed-out request against a
  default server (benchmarks/serve_hardening.py says what and how).

Writes benchmarks/results/serve.json; with --only, that section's results replace the ones
there and the rest are kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import httpx
from _common import BUILD, QUICK, RESULTS, build_or_open, dataset, environment, write_json
from serve_hardening import run_hardening
from serve_process import percentile, running_server, scratch_copy, server_5xx

from densekit.evaluate.beir import load_beir
from densekit.retrieve import Collection

CLIENTS = (1, 4, 16, 64)


async def client_load(url: str, queries: list[str], clients: int, requests: int) -> dict:
    """``clients`` clients, each sending ``requests`` dense searches of the collection served
    as "scifact" one after another: throughput, latency, and each query's ranking."""
    latencies: list[float] = []
    errors = 0
    rankings: dict[str, list[tuple[str, float]]] = {}

    async def client(number: int, http: aiohttp.ClientSession) -> None:
        nonlocal errors
        for step in range(requests):
            query = queries[(number * requests + step) % len(queries)]
            body = {"collection": "scifact", "query": query, "k": 10, "retriever": "dense"}
            started = time.perf_counter()
            try:
                async with http.post("/search", json=body) as answer:
                    payload = await answer.json() if answer.status == 200 else None
            except aiohttp.ClientError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            if payload is None:
                errors += 1
                continue
            hits = payload["results"][0]["hits"]
            rankings.setdefault(query, [(h["id"], h["score"]) for h in hits])

    # aiohttp, not httpx: its C parser costs the shared cores a tenth as much per request, so
    # the numbers are the server's, not the load generator's.
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as http:
        async with http.post("/search", json={"collection": "scifact", "query": "warm"}) as a:
            await a.read()
        started = time.perf_counter()
        await asyncio.gather(*(client(n, http) for n in range(clients)))
        seconds = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": clients * requests,
        "seconds": round(seconds, 2),
        "qps": round(clients * requests / seconds, 1),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "errors": errors,
        "_rankings": rankings,
    }


def batch_sizes(url: str, metric: str = "densekit_encode_batch_size") -> dict[str, float]:
    """Mean texts per model call (or queries per shard search: ``metric``) so far, from the
    server's own Prometheus metrics."""
    text = httpx.get(url + "/metrics").text
    values = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        if line.startswith(f"{metric}_sum") or line.startswith(f"{metric}_count"):
            name, value = line.rsplit(" ", 1)
            values[name.split("{")[0].rsplit("_", 1)[1]] = float(value)
    return {"mean_batch": round(values["sum"] / max(values["count"], 1), 2)}


def run_load(directory: Path, queries: list[str], requests: int) -> dict:
    results: dict[str, dict] = {"batching": {}, "no_batching": {}}
    for label, flags, clients in (
        ("batching", (), CLIENTS),
        ("no_batching", ("--no-batching",), (16, 64)),
    ):
        with running_server(directory, *flags) as url:
            for count in clients:
                row = asyncio.run(client_load(url, queries, count, requests))
                row.update(batch_sizes(url))
                results[label][str(count)] = row
                shown = {k: v for k, v in row.items() if not k.startswith("_")}
                print(label, json.dumps(shown), flush=True)
    on, off = results["batching"]["16"], results["no_batching"]["16"]
    compared = same_rankings(on, off)
    for table in results.values():
        for row in table.values():
            row.pop("_rankings")
    results["batching_vs_off_16_clients"] = compared
    return results


def same_rankings(on: dict, off: dict) -> dict:
    """Throughput of load ``on`` over load ``off``, and how their rankings of the queries both
    sent compare."""
    same = [q for q in on["_rankings"] if q in off["_rankings"]]
    identical = sum(
        [d for d, _ in on["_rankings"][q]] == [d for d, _ in off["_rankings"][q]] for q in same
    )
    score_gap = max(
        abs(a[1] - b[1])
        for q in same
        for a, b in zip(on["_rankings"][q], off["_rankings"][q], strict=True)
    )
    return {
        "throughput_ratio": round(on["qps"] / off["qps"], 2),
        "queries_compared": len(same),
        "identical_rankings": identical,
        "max_score_difference": float(f"{score_gap:.2e}"),
    }


def model_alone(directory: Path, queries: list[str], sizes: tuple[int, ...] = (1, 8, 16)) -> dict:
    """The encoder's own gain from batching, in this process with nothing else running: the
    most end-to-end micro-batching can give (best of 5 per size)."""
    with Collection(directory) as collection:
        encoder = collection.encoder
        encoder.encode_queries(queries[:8])
        per_query = {}
        for size in sizes:
            # Five batches of ``size`` queries, reusing queries when there are too few (QUICK).
            batches = [
                [queries[(r * size + i) % len(queries)] for i in range(size)] for r in range(5)
            ]
            best = min(_seconds(lambda b=b: encoder.encode_queries(b)) for b in batches)
            per_query[str(size)] = round(1000 * best / size, 2)
    return {
        "ms_per_query": per_query,
        "gain_at_8": round(per_query["1"] / per_query["8"], 2),
        "gain_at_16": round(per_query["1"] / per_query["16"], 2),
    }


def _seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def run_fuzz(source: Path, cases: int) -> dict:
    directory = scratch_copy(source, "serve-fuzz")
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "key"
        key_file.write_text(key)
        report = Path(tmp) / "report.json"
        with running_server(directory, "--api-key-file", str(key_file)) as url:
            started = time.perf_counter()
            completed = subprocess.run(
                [
                    str(Path(sys.executable).parent / "st"),
                    "run",
                    url + "/openapi.json",
                    "--max-examples",
                    str(cases),
                    "--header",
                    f"Authorization: Bearer {key}",
                    "--report",
                    "json",
                    "--report-json-path",
                    str(report),
                    "--request-timeout",
                    "120",
                    "--no-color",
                ],
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - started
            server_errors = server_5xx(url)
        summary = json.loads(report.read_text()) if report.exists() else {}
        logs = BUILD.parent / "logs"
        logs.mkdir(parents=True, exist_ok=True)  # a fresh checkout has none
        if report.exists():
            shutil.copy(report, logs / "serve-fuzz-report.json")
    log = BUILD.parent / "logs" / "serve-fuzz.log"
    log.write_text(completed.stdout + completed.stderr)
    tail = completed.stdout.strip().splitlines()[-12:]
    return {
        "max_examples_per_operation": cases,
        "exit_code": completed.returncode,
        "seconds": round(seconds, 1),
        "server_5xx": server_errors,
        "summary": _fuzz_summary(summary),
        "output_tail": tail,
    }


def _fuzz_summary(report: dict) -> dict:
    """Cases generated and failures by check, from schemathesis' JSON report."""
    return {
        "operations_tested": report.get("operations", {}).get("tested"),
        "test_cases": report.get("test_cases", {}),
        "failures": [
            {"code": f["code"], "title": f["title"], "operations": f["operations"]}
            for f in report.get("failures", [])
        ],
        "errors": report.get("errors", []),
    }


def run_soak(source: Path, seconds: float, readers: int = 4) -> dict:
    directory = scratch_copy(source, "serve-soak")
    with Collection(directory) as collection:
        expected = set(collection.doc_ids)
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "key"
        key_file.write_text(key)
        with running_server(directory, "--api-key-file", str(key_file)) as url:
            stop = threading.Event()
            counts = {"searches": 0, "search_errors": 0, "writes": 0, "write_errors": 0}
            tally = threading.Lock()

            search = {"collection": "scifact", "query": "cancer"}

            def reader() -> None:
                with httpx.Client(base_url=url, timeout=120) as http:
                    while not stop.is_set():
                        answer = http.post("/search", json=search)
                        with tally:
                            counts["searches"] += 1
                            counts["search_errors"] += answer.status_code != 200

            threads = [threading.Thread(target=reader) for _ in range(readers)]
            for thread in threads:
                thread.start()
            headers = {"Authorization": f"Bearer {key}"}
            started, round_ = time.monotonic(), 0
            with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
                while time.monotonic() - started < seconds:
                    new = [
                        {"id": f"soak-{round_}-{i}", "text": f"soak text {round_} {i} on cancer"}
                        for i in range(5)
                    ]
                    added = http.post("/collections/scifact/documents", json={"documents": new})
                    gone = [f"soak-{round_}-0", sorted(expected - {d["id"] for d in new})[0]]
                    removed = http.post("/collections/scifact/delete", json={"ids": gone})
                    for answer in (added, removed):
                        counts["writes"] += 1
                        counts["write_errors"] += answer.status_code != 200
                    if added.status_code == 200 and removed.status_code == 200:
                        expected |= {d["id"] for d in new}
                        expected -= set(gone)
                    round_ += 1
            stop.set()
            for thread in threads:
                thread.join()
            served = httpx.get(url + "/collections/scifact").json()["documents"]
    with Collection(directory) as collection:
        stored = collection.doc_ids
    return {
        "seconds": seconds,
        "readers": readers,
        **counts,
        "documents_expected": len(expected),
        "documents_stored": len(stored),
        "documents_served": served,
        "duplicated_ids": len(stored) - len(set(stored)),
        "lost_ids": len(expected - set(stored)),
        "unexpected_ids": len(set(stored) - expected),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--requests", type=int, default=3 if QUICK else 40, help="requests per client"
    )
    parser.add_argument("--soak-seconds", type=float, default=5.0 if QUICK else 60.0)
    parser.add_argument(
        "--fuzz-cases", type=int, default=3 if QUICK else 50, help="max examples per operation"
    )
    parser.add_argument("--only", choices=["load", "fuzz", "soak", "hardening"])
    args = parser.parse_args()
    queries = list(load_beir(dataset("scifact"), "test").queries.values())
    if args.only is not None:
        run_only(args, queries)
        return
    source = build_or_open("scifact").directory
    results = {"environment": environment(), "collection": "SciFact (5,183 docs), minilm, dense"}
    results["load"] = run_load(Path(source), queries, args.requests)
    results["load"]["model_alone"] = model_alone(Path(source), queries)
    write_json("serve", results)
    results["fuzz"] = run_fuzz(Path(source), args.fuzz_cases)
    print("fuzz", json.dumps(results["fuzz"]), flush=True)
    write_json("serve", results)
    results["soak"] = run_soak(Path(source), args.soak_seconds)
    print("soak", json.dumps(results["soak"]), flush=True)
    results["hardening"] = run_hardening(queries, args.fuzz_cases)
    write_json("serve", results)
    print("wrote benchmarks/results/serve.json")


def run_only(args: argparse.Namespace, queries: list[str]) -> None:
    """One section, merged into the results already there."""
    path = RESULTS / "serve.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if args.only == "hardening":
        section = run_hardening(queries, args.fuzz_cases)
    else:
        source = Path(build_or_open("scifact").directory)
        if args.only == "load":
            section = run_load(source, queries, args.requests)
            section["model_alone"] = model_alone(source, queries)
        elif args.only == "fuzz":
            section = run_fuzz(source, args.fuzz_cases)
        else:
            section = run_soak(source, args.soak_seconds)
    results[args.only] = {"environment": environment(), **section}
    write_json("serve", results)
    print(f"wrote the {args.only} section of benchmarks/results/serve.json")


if __name__ == "__main__":
    main()
