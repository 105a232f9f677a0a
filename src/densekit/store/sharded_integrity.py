"""`densekit check` of a sharded collection: every shard verified against the manifest that
``shards.json`` pins for it, leftovers found (and removed by ``--repair``) shard by shard and at
the top, where interrupted builds leave routed documents and replaced builds their shards."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from densekit.errors import CollectionError
from densekit.store.integrity import (
    IntegrityReport,
    remember_report,
    repair_collection,
    verify_collection,
    verify_pinned,
)
from densekit.store.layout import directory_lock
from densekit.store.leftovers import Finding, find_leftovers
from densekit.store.sharded import SHARD_NAME, ShardedStore, ShardSet, is_sharded
from densekit.store.sharded_changes import roll_forward


def verify_store(directory: str | Path, *, open_check: bool = False) -> IntegrityReport:
    """:func:`verify_sharded` or :func:`~densekit.store.integrity.verify_collection`, as the
    collection at ``directory`` is sharded or not."""
    verify = verify_sharded if is_sharded(directory) else verify_collection
    return verify(directory, open_check=open_check)


def repair_store(directory: str | Path) -> list[Finding]:
    """:func:`repair_sharded` or :func:`~densekit.store.integrity.repair_collection`, as the
    collection at ``directory`` is sharded or not."""
    repair = repair_sharded if is_sharded(directory) else repair_collection
    return repair(directory)


def verify_sharded(directory: str | Path, *, open_check: bool = False) -> IntegrityReport:
    """Every shard's files against their recorded checksums (paths named from the collection
    directory, ``shard-…/gen-…/file``); with ``open_check``, also open the whole collection."""
    directory = Path(directory)
    shard_set = ShardSet.read(directory)
    reports = [
        verify_pinned(directory / name, manifest)
        for name, manifest in zip(shard_set.shards, shard_set.manifests, strict=True)
    ]
    damaged = [
        Finding(f"{name}/{finding.path}", finding.reason)
        for name, report in zip(shard_set.shards, reports, strict=True)
        for finding in report.damaged
    ]
    opened = None
    if open_check and not damaged:
        try:
            ShardedStore(directory).close()
            opened = True
        except CollectionError as error:
            opened = False
            damaged.append(Finding(".", f"does not open: {error}"))
    busy = any(report.write_in_progress for report in reports)
    advice = next((report.advice for report in reports if report.damaged), "")
    if damaged and not advice:
        advice = "; restore the named files from a backup, or rebuild the collection"
    report = IntegrityReport(
        directory=str(directory),
        generation=f"{len(shard_set.shards)} shards",
        files=sum(report.files for report in reports),
        bytes_read=sum(report.bytes_read for report in reports),
        verified=sum(report.verified for report in reports),
        unrecorded=[
            f"{name}/{path}"
            for name, report in zip(shard_set.shards, reports, strict=True)
            for path in report.unrecorded
        ],
        damaged=damaged,
        leftovers=[] if busy else sharded_leftovers(directory, shard_set),
        advice=advice,
        seconds=round(sum(report.seconds for report in reports), 3),
        write_in_progress=busy,
        opened=opened,
    )
    return remember_report(directory, report, shard_set.generation)


def sharded_leftovers(directory: Path, shard_set: ShardSet) -> list[Finding]:
    """What neither ``shards.json`` nor a shard's pinned manifest names."""
    unfinished = {".routing-": "a build", ".reshard-": "a reshard"}
    found = [
        Finding(entry.name, f"routed documents of {what} that did not finish")
        for entry in sorted(directory.iterdir())
        for prefix, what in unfinished.items()
        if entry.is_dir() and entry.name.startswith(prefix)
    ]
    found += [
        Finding(entry.name, "a shard no longer named by shards.json")
        for entry in sorted(directory.iterdir())
        if entry.is_dir()
        and SHARD_NAME.fullmatch(entry.name)
        and entry.name not in shard_set.shards
    ]
    for name, manifest in zip(shard_set.shards, shard_set.manifests, strict=True):
        found += [
            dataclasses.replace(finding, path=f"{name}/{finding.path}")
            for finding in find_leftovers(directory / name, manifest)
        ]
    return found


def repair_sharded(directory: str | Path) -> list[Finding]:
    """Remove the leftovers of the sharded collection at ``directory``; refused while a write
    holds it. Each shard's own manifest is first brought up to the pinned one, so nothing the
    collection names is taken for a leftover."""
    directory = Path(directory)
    with directory_lock(directory):
        shard_set = ShardSet.read(directory)
        found = sharded_leftovers(directory, shard_set)
        roll_forward(directory, shard_set)  # clears each shard's leftovers too
        for finding in found:
            if "/" not in finding.path:
                shutil.rmtree(directory / finding.path, ignore_errors=True)
    return found
