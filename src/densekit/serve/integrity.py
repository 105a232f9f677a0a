"""A server verifies its collections' checksums once, in the background, when it starts.

Opening a collection checks file sizes only (fast); this reads every byte, on one thread of its
own, so the server answers from the first moment. A damaged file is logged (which file, what to
do), counted in ``densekit_collection_damaged_files`` and shown in the collection's info
(``GET /collections/{name}``, under ``integrity``).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from prometheus_client import Gauge

from densekit.errors import DensekitError
from densekit.store.sharded_integrity import verify_store

if TYPE_CHECKING:
    from densekit.serve.state import ServerState

log = logging.getLogger("densekit.serve")


def start_integrity_checks(state: ServerState) -> threading.Thread:
    """Verify every collection of ``state`` on a background thread; returns the thread."""
    damaged = Gauge(
        "densekit_collection_damaged_files",
        "Files of a served collection that failed its checksum check at start (-1: the check "
        "could not run).",
        ["collection"],
        registry=state.metrics.registry,
    )
    thread = threading.Thread(
        target=_check_all, args=(state, damaged), name="densekit-integrity", daemon=True
    )
    thread.start()
    return thread


def _check_all(state: ServerState, damaged: Gauge) -> None:
    for name in state.catalog.names:
        try:
            report = verify_store(state.catalog[name].directory)
        except (DensekitError, OSError) as exc:
            damaged.labels(name).set(-1)
            log.warning("collection %r: the integrity check could not run: %s", name, exc)
            continue
        damaged.labels(name).set(len(report.damaged))
        for damage in report.damaged:
            log.error("collection %r: %s: %s; %s", name, damage.path, damage.reason, report.advice)
