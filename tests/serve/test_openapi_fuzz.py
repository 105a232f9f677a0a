"""Schemathesis against the server's own OpenAPI spec: no 5xx, no response outside the spec."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from serving import RunningServer

schemathesis = pytest.importorskip("schemathesis")

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
