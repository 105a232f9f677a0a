"""A `densekit serve` process for the serve benchmarks, and what they read from it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from _common import BUILD


@contextmanager
def running_server(directory: Path, *flags: str) -> Iterator[str]:
    """A `densekit serve` process on a free loopback port; stopped with SIGTERM."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "densekit.cli.main", "serve", f"scifact={directory}"]
    process = subprocess.Popen(
        [*command, "--port", str(port), *flags], env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def scratch_copy(source: Path, name: str) -> Path:
    target = BUILD / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return target


def server_5xx(url: str) -> int:
    total = 0
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("densekit_requests_total") and 'status="5' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total
