"""Schemathesis against the server's own OpenAPI spec: no 5xx, no response outside the spec."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from required import require
from serving import RunningServer

schemathesis = require("schemathesis")

CASES_PER_OPERATION = 30


def fuzz(url: str, cases_per_operation: int) -> dict[str, int]:
    """Run generated requests against every operation; returns cases run per operation. A
    failed check (a 5xx, a status or body the spec does not document) raises."""
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        counts[label] = 0
        _check(operation, label, counts, cases_per_operation)()
    return counts


def _check(operation, label: str, counts: dict[str, int], examples: int):
    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        counts[label] += 1
        case.call_and_validate()

    return check


def test_api_answers_every_generated_request_within_its_spec(server: RunningServer) -> None:
    counts = fuzz(server.url, CASES_PER_OPERATION)
    assert "POST /search" in counts and "POST /v1/embeddings" in counts
    assert all(count > 0 for count in counts.values())


def test_the_spec_states_the_id_rules_the_collection_applies() -> None:
    import re

    from densekit.files.ids import id_problem
    from densekit.serve.schemas import NEW_ID_PATTERN

    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace()]
    samples = ["a", ".", "..", "...", ".a", "a.", "a b", "café", "日本語", "a/../b", "\ufeffx"]
    samples += [chr(c) for c in range(0xA1)] + [f"a{chr(c)}" for c in range(0xA1)]
    samples += [f"a{chr(c)}b" for c in range(0xA1)] + [f"a{s}b" for s in spaces]
    samples += [f"{s}a" for s in spaces] + ["x\u2028y", "a\u200bb", "\u200b"]
    for sample in samples:  # the closing $ read as the end of the string, as JSON Schema does
        allowed = re.search(NEW_ID_PATTERN.removesuffix("$") + r"\Z", sample) is not None
        assert allowed == (id_problem(sample) is None), repr(sample)


def test_undeclared_methods_get_405_and_keyless_writes_declare_no_key(
    server: RunningServer, tmp_path, serve_state
) -> None:
    from serving import build_hashing_collection, hashing_state

    for path in ("/collections", "/health", "/collections/docs/documents/d1"):
        answer = httpx.put(server.url + path, content=b"x")
        assert answer.status_code == 405, path
    keyed = httpx.get(server.url + "/openapi.json").json()
    assert "security" in keyed["paths"]["/collections/{name}/delete"]["post"]
    state = hashing_state({"docs": build_hashing_collection(tmp_path / "open")}, api_key=None)
    keyless = httpx.get(serve_state(state) + "/openapi.json").json()
    assert "security" not in keyless["paths"]["/collections/{name}/delete"]["post"]
