"""`--ray`, `--workers`, `--gpus-per-worker`: running a command's heavy part on a Ray cluster."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from densekit.encode import Encoder
from densekit.errors import InputError
from densekit.store import BuildOptions
from densekit.store.encoding_run import PartitionEncoder
from densekit.store.sharded import StoreOpener

THIS_MACHINE = "this-machine"  # --ray without an address


def add_ray_arguments(parser: argparse.ArgumentParser, *, workers: bool) -> None:
    group = parser.add_argument_group(
        "on a Ray cluster (pip install 'densekit[ray]'; docs/scale.md)"
    )
    group.add_argument(
        "--ray",
        nargs="?",
        const=THIS_MACHINE,
        metavar="ADDRESS",
        help="run on Ray: alone, the cluster started on this machine (`ray start --head`) or a "
        "new one for this command; auto: a running cluster; HOST:PORT or ray://HOST:PORT: "
        "that cluster",
    )
    if workers:
        group.add_argument(
            "--workers",
            type=int,
            metavar="N",
            help="encoding workers, each loading the model once (default: one per core, or "
            "per --gpus-per-worker GPUs); partitions are --shard-rows passages",
        )
        group.add_argument(
            "--gpus-per-worker",
            type=float,
            default=0.0,
            metavar="G",
            help="GPUs each worker reserves (default: 0, encode on CPU cores)",
        )


def ray_address(args: argparse.Namespace) -> str | None:
    return None if args.ray == THIS_MACHINE else args.ray


def check_ray_arguments(args: argparse.Namespace) -> None:
    pool = getattr(args, "workers", None) is not None or getattr(args, "gpus_per_worker", 0)
    if args.ray is None and pool:
        raise InputError("--workers and --gpus-per-worker size a Ray worker pool; add --ray")


@contextmanager
def on_cluster(args: argparse.Namespace) -> Iterator[StoreOpener | None]:
    """With ``--ray``: an opener whose sharded collections are searched by shard actors on the
    cluster; else None (shards searched in this process's threads)."""
    if args.ray is None:
        yield None
        return
    from densekit.distributed.shard_actors import shard_actors

    with shard_actors(ray_address(args)) as opener:
        yield opener


@contextmanager
def remote_encoding(
    args: argparse.Namespace, options: BuildOptions, encoder: Encoder
) -> Iterator[PartitionEncoder | None]:
    """Ray workers encoding with ``encoder``'s model when ``--ray`` is given, else None."""
    check_ray_arguments(args)
    if args.ray is None:
        yield None
        return
    from densekit.distributed import ray_encoding

    with ray_encoding(
        options, encoder.fingerprint, ray_address(args), args.workers, args.gpus_per_worker
    ) as encoding:
        yield encoding
