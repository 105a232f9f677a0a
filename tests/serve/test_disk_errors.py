"""A write the disk cannot take (full, read-only) is a 507 or 503 that says why, not a 500;
nothing is changed, searches go on, and the same write succeeds once the disk is fixed.

The disk's refusal is raised where every commit ends, at the rename that publishes the new
manifest (the collection's atomic commit), as the operating system raises it there.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import httpx
import pytest
from serving import API_KEY, RunningServer

AUTH = {"Authorization": f"Bearer {API_KEY}"}
NEW = {"documents": [{"id": "n1", "text": "Comets have icy tails."}]}


@pytest.fixture
def failing_disk(server: RunningServer, monkeypatch):
    """Make renames inside the collection fail with a given errno; returns the setter."""
    real_replace = os.replace
    failure: dict[str, int] = {}

    def replace(source, target, *args, **kwargs):
        inside = Path(target).resolve().is_relative_to(server.directory.resolve())
        if inside and "errno" in failure:
            code = failure["errno"]
            raise OSError(code, os.strerror(code), str(target))
        return real_replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)

    def fail_with(code: int | None) -> None:
        failure.clear()
        if code is not None:
            failure["errno"] = code

    return fail_with


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        (errno.ENOSPC, 507, "full"),
        (errno.EDQUOT, 507, "quota"),
        (errno.EROFS, 503, "read-only"),
        (errno.EACCES, 503, "permission denied"),
    ],
)
def test_a_write_the_disk_refuses_says_why(
    server: RunningServer, failing_disk, code: int, status: int, reason: str
) -> None:
    failing_disk(code)
    for path, body in (
        ("/collections/docs/documents", NEW),
        ("/collections/docs/delete", {"ids": ["d1"]}),
    ):
        answer = httpx.post(server.url + path, json=body, headers=AUTH, timeout=30)
        assert answer.status_code == status, answer.text
        refusal = answer.json()
        assert refusal["errno"] == errno.errorcode[code]
        assert reason in refusal["detail"] and "'docs'" in refusal["detail"]
        assert str(server.directory) not in answer.text  # no server paths
    # Nothing changed, and searches go on.
    assert httpx.get(server.url + "/collections/docs").json()["documents"] == 5
    search = httpx.post(server.url + "/search", json={"collection": "docs", "query": "cat"})
    assert search.status_code == 200
    failing_disk(None)  # space freed, remounted read-write
    retried = httpx.post(server.url + "/collections/docs/documents", json=NEW, headers=AUTH)
    assert retried.status_code == 200 and retried.json()["documents"] == 6


def test_other_disk_errors_are_still_500s_with_a_json_body(
    server: RunningServer, failing_disk
) -> None:
    failing_disk(errno.EIO)  # a failing disk is the server's fault, not the request's
    answer = httpx.post(server.url + "/collections/docs/documents", json=NEW, headers=AUTH)
    assert answer.status_code == 500 and answer.json()["detail"].startswith("internal error")
