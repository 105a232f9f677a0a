"""Leftovers: what a collection directory holds that its manifest no longer names.

Generations replaced by a later commit, the files of shared generations that a change or a
compaction superseded, builds killed before they published, staging files and unnamed adapter
folders. Every write clears them once its manifest is published (and a killed write's are
cleared by the next one, or by ``densekit check --repair``), always under the writer lock, so
no other write is staging files at the time. Readers are safe too: an open collection holds its
files open (unlinking keeps them readable), and one still opening retries on the new manifest.

Only what densekit itself creates is ever touched: folders named like a generation, the folders in
``adapters/`` and the manifest's staging files, inside the collection directory and never reached
through a symbolic link; everything else in the directory is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from densekit.store.manifest import MANIFEST_NAME, Manifest
from densekit.store.manifest_checks import ADAPTERS_DIR, GENERATION_NAME

BUILD_FILE = "build.json"
_MANIFEST_STAGING = re.compile(rf"\.{re.escape(MANIFEST_NAME)}\.\d+\.tmp")


@dataclass(frozen=True)
class Finding:
    """A file or folder of a collection (by its path relative to the collection) and what is
    the matter with it: a leftover, or (for `densekit check`) damage."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def named_generations(manifest: Manifest | None) -> set[str]:
    """The generations ``manifest`` names: its own and those whose files it shares."""
    if manifest is None:
        return set()
    return {manifest.generation} | {name.split("/", 1)[0] for name in manifest.files}


def find_leftovers(
    directory: Path, manifest: Manifest | None, *, keep: str | None = None
) -> list[Finding]:
    """What ``manifest`` does not name (with ``manifest`` None, every generation but ``keep``,
    the one a build is writing)."""
    named = named_generations(manifest)
    found = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if GENERATION_NAME.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
            if entry.name != keep and entry.name not in named:
                found.append(Finding(entry.name, _generation_reason(Path(entry.path))))
        elif _MANIFEST_STAGING.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            found.append(Finding(entry.name, "a manifest staged by a write that did not finish"))
    if manifest is not None:
        for name in sorted(named):
            found.extend(_superseded_files(directory, name, set(manifest.files)))
    adapter = manifest.adapter if manifest is not None else None
    found.extend(_unnamed_adapters(directory, adapter.folder if adapter is not None else None))
    return found


def clear_leftovers(
    directory: Path, manifest: Manifest | None, *, keep: str | None = None
) -> list[Finding]:
    """Remove what :func:`find_leftovers` finds and return what went; the caller holds the
    writer lock. What cannot be removed (another user's files, a disk turned read-only) stays,
    for the next write or `densekit check` to list: a write clears after it has published, so
    failing it then would report a committed change as not made."""
    removed = []
    for leftover in find_leftovers(directory, manifest, keep=keep):
        path = directory / leftover.path
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if not os.path.lexists(path):
            removed.append(leftover)
    if manifest is not None:
        for name in named_generations(manifest):
            with contextlib.suppress(OSError):
                _remove_empty_folders(directory / name)
    return removed


def _generation_reason(root: Path) -> str:
    try:
        json.loads((root / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "a generation no manifest names (replaced, or a write killed before it published)"
    return (
        "an unfinished build (rerunning the same densekit index resumes from it) or a replaced one"
    )


def _superseded_files(directory: Path, generation: str, named: set[str]) -> list[Finding]:
    """Files of a named generation that the manifest no longer lists (a shared generation keeps
    only the shards later generations still use). Symbolic links are never followed."""
    root = directory / generation
    if root.is_symlink() or not root.is_dir():
        return []
    found = []
    for folder, folders, files in os.walk(root):
        links = [name for name in folders if Path(folder, name).is_symlink()]
        for name in sorted([*files, *links]):
            relative = Path(folder, name).relative_to(directory).as_posix()
            if relative not in named:
                found.append(Finding(relative, "no longer part of the collection (superseded)"))
    return found


def _unnamed_adapters(directory: Path, keep: str | None) -> list[Finding]:
    """Adapter folders other than ``keep`` (replaced, detached, or staged by a killed attach)."""
    root = directory / ADAPTERS_DIR
    if root.is_symlink() or not root.is_dir():
        return []
    found = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        relative = f"{ADAPTERS_DIR}/{entry.name}"
        # adapters/ is densekit's own folder: each folder in it is an adapter or its staging.
        if entry.is_dir(follow_symlinks=False) and relative != keep:
            found.append(Finding(relative, "an adapter the manifest no longer names"))
    return found


def _remove_empty_folders(root: Path) -> None:
    if root.is_symlink() or not root.is_dir():
        return
    for folder, _, _ in sorted(os.walk(root), key=lambda walked: len(walked[0]), reverse=True):
        path = Path(folder)
        if path != root and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
