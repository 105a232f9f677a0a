"""Storing an adapter in a collection, so that its searches apply it.

The adapter goes to a fresh folder under ``adapters/`` (published whole), then the manifest is
replaced in one rename naming it: a reader sees the collection with the old adapter or the
new one. Its files' checksums are recorded in the folder. Folders no manifest names are removed
afterwards; open snapshots loaded theirs when they opened. Later changes and compactions keep
the manifest's adapter; a rebuild drops it.
"""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path
from typing import Any

from densekit.errors import CollectionError
from densekit.files.durability import fsync_directory, fsync_tree
from densekit.store import layout
from densekit.store.integrity import record_folder_checksums
from densekit.store.leftovers import clear_leftovers
from densekit.store.manifest import AdapterInfo, Manifest, read_manifest, write_manifest


def attach_adapter(
    directory: str | Path,
    adapter: Any,
    *,
    info: dict[str, Any] | None = None,
    tokenizer: Any = None,
) -> AdapterInfo:
    """Store ``adapter`` (a ResidualAdapter or LexSemBridge trained on this collection's
    encoder) in the collection at ``directory``; it replaces any adapter stored before."""
    from densekit.encode.adapters.files import adapter_kind, save_adapter

    directory = Path(directory)
    maps_documents = getattr(adapter, "document_map", None) is not None
    read_manifest(directory)  # a missing or broken collection is reported before locking
    # Only the manifest is read, not the collection opened: an adapter whose files were
    # damaged can still be replaced (or removed).
    with layout.directory_lock(directory):
        manifest = read_manifest(directory)
        check_attachable(directory, manifest, adapter.dimension, maps_documents)
        assert manifest.encoder is not None  # checked above
        name = f"{adapter_kind(adapter)}-{secrets.token_hex(6)}"
        folder = directory / layout.ADAPTERS_DIR / name
        save_adapter(
            adapter,
            folder,
            encoder_fingerprint=manifest.encoder.fingerprint,
            info=info,
            tokenizer=tokenizer,
        )
        record_folder_checksums(folder)
        fsync_tree(folder)
        fsync_directory(directory / layout.ADAPTERS_DIR)
        fsync_directory(directory)
        record = AdapterInfo(
            folder=f"{layout.ADAPTERS_DIR}/{name}",
            kind=adapter_kind(adapter),
            files={
                path.relative_to(folder).as_posix(): path.stat().st_size
                for path in sorted(folder.rglob("*"))
                if path.is_file()
            },
            maps_documents=maps_documents,
        )
        manifest = dataclasses.replace(manifest, adapter=record)
        write_manifest(directory, manifest)
        clear_leftovers(directory, manifest)
    return record


def check_attachable(
    directory: Path, manifest: Manifest, dimension: int, maps_documents: bool
) -> None:
    """Refuse, before any training, an adapter the collection could not apply."""
    if manifest.encoder is None or manifest.dense is None:
        raise CollectionError(
            f"{directory}: an adapter maps dense vectors, and this collection has none; "
            "rebuild it with --retriever dense or hybrid"
        )
    if dimension != manifest.encoder.dimension:
        raise CollectionError(
            f"{directory}: the adapter maps {dimension}-dimensional vectors, the "
            f"collection holds {manifest.encoder.dimension}-dimensional ones"
        )
    if maps_documents and manifest.dense.index_file is not None:
        raise CollectionError(
            f"{directory}: an adapter that maps documents needs the exact index (this "
            f"collection uses {manifest.dense.index}, built on the unmapped vectors); "
            "train a query-side adapter (--sides query) or rebuild with --index flat"
        )


def detach_adapter(directory: str | Path) -> bool:
    """Stop applying the collection's adapter; False if it had none."""
    directory = Path(directory)
    read_manifest(directory)
    with layout.directory_lock(directory):
        manifest = read_manifest(directory)
        if manifest.adapter is None:
            return False
        manifest = dataclasses.replace(manifest, adapter=None)
        write_manifest(directory, manifest)
        clear_leftovers(directory, manifest)
    return True
