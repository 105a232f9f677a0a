"""What a running server holds: its collections, models, metrics and settings."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from densekit.retrieve.pipeline import Pipeline
from densekit.serve.catalog import Catalog
from densekit.serve.connections import ConnectionLimits
from densekit.serve.metrics import ServerMetrics
from densekit.serve.models import ModelPool
from densekit.serve.security import is_loopback


@dataclass
class ServerState:
    """Everything a running app holds; built by :func:`densekit.serve.server.open_state`."""

    catalog: Catalog
    models: ModelPool
    metrics: ServerMetrics
    pipelines: Mapping[str, Pipeline] = field(default_factory=dict)
    api_key: str | None = None
    timeout_s: float = 30.0
    threads: int = 64
    max_body_bytes: int = 8 * 1024 * 1024
    # Origins (scheme://host[:port]) whose web pages may call this server (--allow-origin).
    allowed_origins: list[str] = field(default_factory=list)
    # The address it listens on: without an API key, writes are served on loopback only.
    host: str = "127.0.0.1"
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    access_log: bool = False
    started: int = field(default_factory=lambda: int(time.time()))

    @property
    def read_only(self) -> bool:
        """Without a key, writes are served only where no other machine can reach them."""
        return self.api_key is None and not is_loopback(self.host)

    def close(self) -> None:
        self.catalog.close()
        self.models.close()
