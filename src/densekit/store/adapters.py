"""Storing an adapter in a collection, so that its searches apply it.

The adapter goes to a fresh folder under ``adapters/`` (published whole), then the manifest is
replaced in one rename naming it: a reader sees the collection with the old adapter or the
new one. Folders no manifest names are removed afterwards; open snapshots loaded theirs when
they opened. Later changes and compactions keep the manifest's adapter; a rebuild drops it.
"""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path
from typing import Any

from densekit.errors import CollectionError
from densekit.store.commit import open_for_writing
from densekit.store.layout import ADAPTERS_DIR, remove_unnamed_adapters
from densekit.store.manifest import AdapterInfo, write_manifest


def attach_adapter(
    directory: str | Path,
    adapter: Any,
    *,
    info: dict[str, Any] | None = None,
    tokenizer: Any = None,
) -> AdapterInfo:
    """Store ``adapter`` (a ResidualAdapter or LexSemBridge trained on this collection's
    encoder) in the collection at ``directory``; it replaces any adapter stored before."""
    from densekit.adapt.files import adapter_kind, save_adapter

    directory = Path(directory)
    with open_for_writing(directory) as current:
        manifest = current.manifest
        if manifest.encoder is None or manifest.dense is None:
            raise CollectionError(
                f"{directory}: an adapter maps dense vectors, and this collection has none; "
                "rebuild it with --retriever dense or hybrid"
            )
        if adapter.dimension != manifest.encoder.dimension:
            raise CollectionError(
                f"{directory}: the adapter maps {adapter.dimension}-dimensional vectors, the "
                f"collection holds {manifest.encoder.dimension}-dimensional ones"
            )
        maps_documents = getattr(adapter, "document_map", None) is not None
        if maps_documents and manifest.dense.index_file is not None:
            raise CollectionError(
                f"{directory}: an adapter that maps documents needs the exact index (this "
                f"collection uses {manifest.dense.index}, built on the unmapped vectors); "
                "train a query-side adapter (--sides query) or rebuild with --index flat"
            )
        name = f"{adapter_kind(adapter)}-{secrets.token_hex(6)}"
        folder = directory / ADAPTERS_DIR / name
        save_adapter(
            adapter,
            folder,
            encoder_fingerprint=manifest.encoder.fingerprint,
            info=info,
            tokenizer=tokenizer,
        )
        record = AdapterInfo(
            folder=f"{ADAPTERS_DIR}/{name}",
            kind=adapter_kind(adapter),
            files={
                path.relative_to(folder).as_posix(): path.stat().st_size
                for path in sorted(folder.rglob("*"))
                if path.is_file()
            },
            maps_documents=maps_documents,
        )
        write_manifest(directory, dataclasses.replace(manifest, adapter=record))
        remove_unnamed_adapters(directory, keep=record.folder)
    return record


def detach_adapter(directory: str | Path) -> bool:
    """Stop applying the collection's adapter; False if it had none."""
    directory = Path(directory)
    with open_for_writing(directory) as current:
        if current.manifest.adapter is None:
            return False
        write_manifest(directory, dataclasses.replace(current.manifest, adapter=None))
        remove_unnamed_adapters(directory, keep=None)
    return True
