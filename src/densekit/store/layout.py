"""Where things live inside a collection directory, and how a build claims one."""

from __future__ import annotations

import fcntl
import json
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from densekit.errors import CollectionError
from densekit.store.manifest import MANIFEST_NAME

DOCUMENTS_FILE = "documents.sqlite"
EMBEDDINGS_DIR = "embeddings"
PASSAGE_OFFSETS_FILE = "passage_offsets.npy"
LEXICAL_DIR = "bm25"
SPARSE_DIR = "splade"
TOMBSTONES_FILE = "deleted.npy"
ADAPTERS_DIR = "adapters"
GENERATION_PREFIX = "gen-"
LOCK_FILE = ".densekit.lock"


def new_generation_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{GENERATION_PREFIX}{stamp}-{secrets.token_hex(4)}"


def is_collection_dir(directory: Path) -> bool:
    """True for a finished or interrupted densekit collection (safe to overwrite)."""
    return any((directory / name).exists() for name in (MANIFEST_NAME, LOCK_FILE)) or any(
        directory.glob(f"{GENERATION_PREFIX}*")
    )


def _holds_anything(directory: Path) -> bool:
    return any(path.name != LOCK_FILE for path in directory.iterdir())


@contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Exclusive, non-blocking: a second writer is refused instead of interleaving."""
    with (directory / LOCK_FILE).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CollectionError(
                f"{directory}: another densekit write (a build or a change) is in progress "
                "here; wait for it to finish"
            ) from None
        yield


@contextmanager
def claimed_output(directory: Path, *, overwrite: bool) -> Iterator[bool]:
    """Hold ``directory`` for one build, creating it if needed; yields whether it was created.

    An existing collection is replaced only with ``overwrite``; a non-empty directory that is not
    a collection is never touched, so a typo in ``--out`` cannot destroy unrelated files. A lock
    keeps two builds from writing into one directory at once.
    """
    if directory.exists() and not directory.is_dir():
        raise CollectionError(f"{directory}: exists and is not a directory; choose another --out")
    if directory.exists() and _holds_anything(directory) and not is_collection_dir(directory):
        raise CollectionError(
            f"{directory}: exists, is not empty and is not a densekit collection; "
            "refusing to write into it; choose another --out"
        )
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    with directory_lock(directory):
        if not overwrite and (directory / MANIFEST_NAME).exists():
            raise CollectionError(
                f"{directory}: a collection already exists here; pass --overwrite to replace it "
                "(it stays searchable until the new one is complete)"
            )
        yield created


BUILD_FILE = "build.json"


def start_generation(directory: Path, key: str) -> str:
    """Create a fresh generation for a build with settings digest ``key``."""
    name = new_generation_name()
    (directory / name).mkdir()
    (directory / name / BUILD_FILE).write_text(json.dumps({"key": key}), encoding="utf-8")
    return name


def unfinished_generation(directory: Path, key: str) -> str | None:
    """An interrupted build's generation with the same settings, which a new build resumes."""
    published = published_generations(directory)
    for path in sorted(directory.glob(f"{GENERATION_PREFIX}*")):
        if path.name in published:
            continue
        try:
            if json.loads((path / BUILD_FILE).read_text(encoding="utf-8"))["key"] == key:
                return path.name
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def has_committed_shards(root: Path) -> bool:
    return any((root / EMBEDDINGS_DIR).glob("*.json"))


def published_generations(directory: Path) -> set[str]:
    """The generations the published manifest names: its own and those whose files it shares."""
    try:
        data = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
        files = data.get("files", {})
        return {data["generation"]} | {str(name).split("/", 1)[0] for name in files}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def remove_stale_generations(directory: Path, keep: str) -> None:
    """Delete generations that are neither ``keep`` nor published (left by replaced, killed or
    differently configured builds, and by changes a later compaction superseded).

    A collection opened before a swap keeps working: it holds its files open.
    """
    published = published_generations(directory)
    for path in directory.glob(f"{GENERATION_PREFIX}*"):
        if path.name != keep and path.name not in published:
            shutil.rmtree(path, ignore_errors=True)
    for path in directory.glob(f".{MANIFEST_NAME}.*.tmp"):
        path.unlink(missing_ok=True)


def files_with_sizes(directory: Path, generation: str) -> dict[str, int]:
    root = directory / generation
    return {
        path.relative_to(directory).as_posix(): path.stat().st_size
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def remove_unnamed_adapters(directory: Path, keep: str | None) -> None:
    """Drop adapter folders other than ``keep`` (the manifest's): replaced or detached ones, or
    one a rebuild left behind. Open snapshots loaded theirs when they opened."""
    root = directory / ADAPTERS_DIR
    if not root.is_dir():
        return
    for path in root.iterdir():
        if f"{ADAPTERS_DIR}/{path.name}" != keep:
            shutil.rmtree(path, ignore_errors=True)
