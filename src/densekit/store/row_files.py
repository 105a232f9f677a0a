"""Stored arrays of row numbers (tombstones, passage offsets), read as untrusted input: a file
of the right size holding anything but row numbers is a corrupt collection, said as such."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from densekit.errors import CollectionError
from densekit.index.vectors import deletion_mask
from densekit.store.manifest import Manifest


def corrupt(directory: Path, what: str) -> CollectionError:
    return CollectionError(
        f"{directory}: corrupt collection: {what}; rebuild with densekit index ... --overwrite"
    )


def open_tombstones(directory: Path, manifest: Manifest) -> np.ndarray | None:
    """A boolean per document row, true where the document was deleted; ``None`` if none."""
    if not manifest.deleted:
        return None
    if manifest.tombstones is None:
        raise corrupt(directory, f"{manifest.deleted} deleted documents but no tombstone file")
    rows = load_rows(directory, manifest.tombstones, "tombstone file")
    if len(rows) != manifest.deleted or (len(rows) and rows.max() >= manifest.document_rows):
        raise corrupt(
            directory,
            f"the tombstone file {manifest.tombstones} lists {len(rows)} rows (the largest "
            f"{rows.max() if len(rows) else None}), the manifest says {manifest.deleted} of "
            f"{manifest.document_rows}",
        )
    return deletion_mask(rows, manifest.document_rows)


def load_rows(directory: Path, relative: str, what: str) -> np.ndarray:
    """A stored array of row numbers: one-dimensional, integer, not negative; anything else
    (garbage of the right size) is corruption."""
    try:
        rows = np.load(directory / relative, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise corrupt(directory, f"the {what} {relative} is unreadable ({exc})") from None
    if rows.ndim != 1 or rows.dtype.kind not in "iu" or (len(rows) and rows.min() < 0):
        raise corrupt(
            directory,
            f"the {what} {relative} holds {rows.dtype} values of shape {rows.shape}, not row "
            "numbers",
        )
    return rows
