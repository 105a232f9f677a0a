"""Make written bytes durable before a manifest makes them visible."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from densekit.errors import InputError


def fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, durably: readers see old or new, whole."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with staging.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
    fsync_directory(path.parent)


def fsync_tree(root: Path) -> None:
    """fsync every file below ``root``, then the directories that name them."""
    directories = [root]
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            directories.append(path)
        else:
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for directory in reversed(directories):
        fsync_directory(directory)


def refuse_to_replace(out: Path, overwrite: bool) -> None:
    """A folder that already holds something is replaced only when asked to."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out}: exists and is not empty; pass --overwrite to replace it")


def publish_folder(out: Path, write: Callable[[Path], None]) -> None:
    """Let ``write`` fill a staging folder beside ``out``, then rename it into place.

    An interrupted run leaves no half folder at ``out``; replacing an existing one moves it
    aside first, and a crash between the two renames is repaired by the next call (the old
    folder comes back before anything else), so ``out`` ends up old or new.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    aside = out.with_name(f".{out.name}.previous")
    if aside.exists() and not out.exists():
        os.replace(aside, out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(staging)
        staging.chmod(0o755)
        fsync_tree(staging)
        previous = aside if out.exists() else None
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(out, previous)
        os.replace(staging, out)
        fsync_directory(out.parent)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
