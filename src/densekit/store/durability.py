"""Make written bytes durable before a manifest makes them visible."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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
