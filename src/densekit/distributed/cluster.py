"""Joining a Ray cluster: the address forms the CLI takes, with errors a user can act on.

``address`` is Ray's own: None joins the cluster running on this machine (``ray start``) or
starts one for this process, ``"auto"`` joins a running one or fails, ``HOST:PORT`` (or
``ray://HOST:PORT``, Ray Client) joins that one.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

from densekit.errors import InputError, MissingDependencyError

REACH_SECONDS = 5.0  # Ray itself waits ~20 s on an address nothing answers at
NAMESPACE = "densekit"


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray") from None
    return ray


@dataclass(frozen=True)
class Resources:
    """What the cluster has for workers: CPU cores and GPUs, over every node."""

    cpus: float
    gpus: float
    nodes: int


def cluster_resources() -> Resources:
    ray = import_ray()
    total = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return Resources(total.get("CPU", 0.0), total.get("GPU", 0.0), nodes)


def check_reachable(address: str) -> None:
    """Fail in seconds, naming the address, when nothing answers there."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(
            f"--ray {address!r}: give a cluster's HOST:PORT (as `ray start --head` prints it), "
            "ray://HOST:PORT, or auto"
        )
    try:
        socket.create_connection((host, int(port)), timeout=REACH_SECONDS).close()
    except OSError as error:
        raise InputError(
            f"no Ray cluster answers at {address} ({error}); check the address, or start one "
            "there with `ray start --head`"
        ) from None


@contextmanager
def connected(address: str | None = None) -> Iterator[Resources]:
    """Ray, joined to the cluster at ``address``, for the time of the block; a cluster this
    process was already joined to is used as it is, one it joined here is left afterwards."""
    ray = import_ray()
    if ray.is_initialized():
        yield cluster_resources()
        return
    if address is not None:
        check_reachable(address)
    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            logging_level=logging.WARNING,
            log_to_driver=False,  # workers' own progress bars would garble the driver's
        )
    except ConnectionError as error:
        where = address or "this machine"
        raise InputError(
            f"could not join a Ray cluster at {where}: {error}; start one with `ray start "
            "--head`, or drop the address to start one for this command"
        ) from None
    try:
        yield cluster_resources()
    finally:
        ray.shutdown()
