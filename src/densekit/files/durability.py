"""Make written bytes durable before a manifest makes them visible."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from densekit.errors import InputError

# Errors of the storage, not of densekit: reported with the file and what to do.
_ADVICE = {
    errno.ENOSPC: "free some space (or write somewhere else) and rerun",
    errno.EDQUOT: "the disk quota is used up; free some space and rerun",
    errno.EFBIG: "the file is larger than this filesystem allows; write somewhere else",
    errno.EROFS: "the filesystem is read-only; write somewhere else",
}


class StorageError(OSError):
    """A write the storage refused (full, over quota, read-only), naming the file: still an
    OSError with its errno, so callers that tell a full disk apart keep doing so."""

    def __str__(self) -> str:
        code = errno.errorcode.get(self.errno or 0, str(self.errno))
        return (
            f"{self.filename}: {self.strerror} ({code}) while writing it; "
            f"{_ADVICE.get(self.errno or 0, 'check the storage and rerun')}; nothing half-written "
            "was published"
        )


@contextmanager
def writing(path: Path, *, discard: bool = False) -> Iterator[None]:
    """Name ``path`` in a storage error raised while it is written (numpy, SQLite and fsync
    leave the file out), and with ``discard`` remove what was half-written of it."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        if discard:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if isinstance(exc, StorageError):
            raise
        if isinstance(exc, sqlite3.OperationalError):
            if "full" not in str(exc):
                raise
            code = errno.ENOSPC
            raise StorageError(code, os.strerror(code), str(path)) from exc
        if exc.errno not in _ADVICE:
            raise
        raise StorageError(exc.errno, exc.strerror, exc.filename or str(path)) from exc


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save``, whole or not at all (the generation it goes to is not published yet)."""
    with writing(path, discard=True):
        np.save(path, array)


def fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, durably: readers see old or new, whole."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename, durably: readers see old or new, whole."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing(path):
        try:
            with staging.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            staging.unlink(missing_ok=True)  # a full disk must not be made fuller
            raise
    os.replace(staging, path)
    fsync_directory(path.parent)


def fsync_tree(root: Path) -> None:
    """fsync every file below ``root``, then the directories that name them."""
    directories = [root]
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            directories.append(path)
        else:
            with writing(path), path.open("rb") as handle:
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
