"""Where things live inside a collection directory, and how a build claims one."""

from __future__ import annotations

import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

from densekit.errors import CollectionError
from densekit.store.manifest import MANIFEST_NAME

DOCUMENTS_FILE = "documents.sqlite"
EMBEDDINGS_DIR = "embeddings"
PASSAGE_OFFSETS_FILE = "passage_offsets.npy"
LEXICAL_DIR = "bm25"
GENERATION_PREFIX = "gen-"


def new_generation_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{GENERATION_PREFIX}{stamp}-{secrets.token_hex(4)}"


def is_collection_dir(directory: Path) -> bool:
    """True for a finished or interrupted densekit collection (safe to overwrite)."""
    return (directory / MANIFEST_NAME).exists() or any(directory.glob(f"{GENERATION_PREFIX}*"))


def claim_output(directory: Path, *, overwrite: bool) -> None:
    """Make sure a build may write into ``directory``, creating it if needed.

    An existing collection is replaced only with ``overwrite``; a non-empty directory that is not
    a collection is never touched, so a typo in ``--out`` cannot destroy unrelated files.
    """
    if directory.exists() and not directory.is_dir():
        raise CollectionError(f"{directory}: exists and is not a directory; choose another --out")
    if directory.exists() and any(directory.iterdir()):
        if not is_collection_dir(directory):
            raise CollectionError(
                f"{directory}: exists, is not empty and is not a densekit collection; "
                "refusing to write into it; choose another --out"
            )
        if not overwrite:
            raise CollectionError(
                f"{directory}: a collection already exists here; pass --overwrite to replace it "
                "(it stays searchable until the new one is complete)"
            )
    directory.mkdir(parents=True, exist_ok=True)


def remove_stale_generations(directory: Path, keep: str) -> None:
    """Delete generations the manifest no longer names (left by replaced or killed builds)."""
    for path in directory.glob(f"{GENERATION_PREFIX}*"):
        if path.name != keep:
            shutil.rmtree(path, ignore_errors=True)


def files_with_sizes(directory: Path, generation: str) -> dict[str, int]:
    root = directory / generation
    return {
        path.relative_to(directory).as_posix(): path.stat().st_size
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
