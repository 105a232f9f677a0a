"""Where things live inside a collection directory, and how a build claims one."""

from __future__ import annotations

import fcntl
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from densekit.errors import CollectionError
from densekit.files.durability import writing
from densekit.store.leftovers import BUILD_FILE, named_generations
from densekit.store.manifest import MANIFEST_NAME, Manifest, read_manifest
from densekit.store.manifest_checks import ADAPTERS_DIR as ADAPTERS_DIR
from densekit.store.manifest_checks import GENERATION_NAME

DOCUMENTS_FILE = "documents.sqlite"
EMBEDDINGS_DIR = "embeddings"
PASSAGE_OFFSETS_FILE = "passage_offsets.npy"
LEXICAL_DIR = "bm25"
SPARSE_DIR = "splade"
MULTIVECTOR_DIR = "multivector"
TOMBSTONES_FILE = "deleted.npy"
GENERATION_PREFIX = "gen-"
LOCK_FILE = ".densekit.lock"
# A sharded collection's manifest, naming its shards (see densekit.store.sharded).
SHARDS_FILE = "shards.json"


def new_generation_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{GENERATION_PREFIX}{stamp}-{secrets.token_hex(4)}"


def is_collection_dir(directory: Path) -> bool:
    """True for a finished or interrupted densekit collection (safe to overwrite)."""
    names = (MANIFEST_NAME, SHARDS_FILE, LOCK_FILE)
    return any((directory / name).exists() for name in names) or any(
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
        published = any((directory / name).exists() for name in (MANIFEST_NAME, SHARDS_FILE))
        if not overwrite and published:
            raise CollectionError(
                f"{directory}: a collection already exists here; pass --overwrite to replace it "
                "(it stays searchable until the new one is complete)"
            )
        yield created


def start_generation(directory: Path, key: str) -> str:
    """Create a fresh generation for a build with settings digest ``key``."""
    name = new_generation_name()
    (directory / name).mkdir()
    with writing(directory / name / BUILD_FILE):
        (directory / name / BUILD_FILE).write_text(json.dumps({"key": key}), encoding="utf-8")
    return name


def unfinished_generation(directory: Path, key: str) -> str | None:
    """An interrupted build's generation with the same settings, which a new build resumes."""
    published = published_generations(directory)
    for path in sorted(directory.glob(f"{GENERATION_PREFIX}*")):
        if path.name in published or not GENERATION_NAME.fullmatch(path.name):
            continue
        try:
            if json.loads((path / BUILD_FILE).read_text(encoding="utf-8"))["key"] == key:
                return path.name
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def has_committed_shards(root: Path) -> bool:
    return any((root / EMBEDDINGS_DIR).glob("*.json"))


def published_manifest(directory: Path) -> Manifest | None:
    """The published manifest; None if there is none, or it is refused (damaged, hostile)."""
    try:
        return read_manifest(directory)
    except CollectionError:
        return None


def published_generations(directory: Path) -> set[str]:
    """The generations the published manifest names (none if it is missing or refused)."""
    return named_generations(published_manifest(directory))


def files_with_sizes(directory: Path, generation: str) -> dict[str, int]:
    root = directory / generation
    return {
        path.relative_to(directory).as_posix(): path.stat().st_size
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
