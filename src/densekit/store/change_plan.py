"""What a change to a collection asks, checked against what the collection holds, and what
it did."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from densekit.corpus.document import Document
from densekit.corpus.in_memory import documents_from
from densekit.errors import InputError
from densekit.files.ids import check_id, stored_id
from densekit.store.documents import DocumentStore

_PREVIEW = 5


class UnknownDocumentError(InputError):
    """A change names a document the collection does not hold (to update or delete)."""


class DocumentConflictError(InputError):
    """A change conflicts with what the collection holds: an id already there, the same id
    twice, or no documents left afterwards."""


@dataclass(frozen=True)
class ChangeReport:
    """What one change did, and what the collection holds after it."""

    added: int
    updated: int
    deleted: int
    documents: int
    tombstones: int
    seconds: float
    encoding: dict[str, Any] | None = None
    compacted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ChangePlan:
    """A validated change: rows to tombstone and documents to append, in order."""

    remove: list[int]
    append: list[Document]
    added: int
    updated: int
    deleted: int


def plan_change(
    store: DocumentStore,
    where: str,
    *,
    add: Iterable[Document] = (),
    update: Iterable[Document] = (),
    upsert: Iterable[Document] = (),
    delete: Iterable[str] = (),
    may_empty: bool = False,
) -> ChangePlan:
    """Check a change against the stored documents; every refusal names the id and its place.
    ``may_empty``: the caller refuses a change that deletes every document itself (a shard's
    part of a change says which shard it would empty)."""
    adding, updating, upserting = (
        documents_of(add, "add"),
        documents_of(update, "update"),
        documents_of(upsert, "upsert"),
    )
    deleting = list(dict.fromkeys(ids_of(delete)))  # naming an id twice deletes it once
    incoming = [*updating, *upserting, *adding]
    check_incoming(incoming)
    both = sorted(set(deleting) & {document.id for document in incoming})
    if both:
        raise InputError(
            f"document {both[0]!r} is both deleted and written in one change; "
            "to replace it, update it (or add with upsert) without deleting it"
        )
    rows = store.rows_of([*deleting, *(document.id for document in incoming)])
    unknown = [doc_id for doc_id in deleting if doc_id not in rows]
    if unknown:
        raise UnknownDocumentError(
            f"{where}: cannot delete {len(unknown)} unknown document id(s): {_preview(unknown)}; "
            "nothing was changed"
        )
    for document in updating:
        if document.id not in rows:
            raise UnknownDocumentError(
                f"{_place(document)}cannot update document {document.id!r}: it is not in "
                f"{where}; add it instead (densekit add, or --upsert to add or replace)"
            )
    for document in adding:
        if document.id in rows:
            raise DocumentConflictError(
                f"{_place(document)}document {document.id!r} is already in {where}; update "
                "it instead (densekit update, or densekit add --upsert to add or replace)"
            )
    replaced = [document.id for document in [*updating, *upserting] if document.id in rows]
    remove = sorted(rows[doc_id] for doc_id in [*deleting, *replaced])
    if not remove and not incoming:
        raise InputError(f"{where}: no documents to add, update or delete; nothing was changed")
    if not may_empty and len(store) - len(remove) + len(incoming) == 0:
        raise DocumentConflictError(
            f"{where}: the change would delete every document; a collection cannot be empty. "
            "Remove the directory instead"
        )
    return ChangePlan(
        remove=remove,
        append=incoming,
        added=len(incoming) - len(replaced),
        updated=len(replaced),
        deleted=len(deleting),
    )


def documents_of(given: Iterable[Document] | Any, name: str) -> list[Document]:
    """Documents, dicts, a DataFrame or a datasets.Dataset, as :mod:`densekit.corpus.in_memory`
    reads them."""
    if isinstance(given, Document | str):
        raise InputError(f"{name} takes a list of documents; wrap the single one in a list")
    return list(documents_from(given, what=name))


def ids_of(given: Iterable[str]) -> list[str]:
    if isinstance(given, str):
        raise InputError(f"delete takes a list of ids; wrap {given!r} in a list")
    # Stored ids, not new ones: those written before today's id rules can be deleted too.
    return [stored_id(doc_id, f"delete[{index}]") for index, doc_id in enumerate(given)]


def check_incoming(documents: list[Document]) -> None:
    seen: dict[str, Document] = {}
    for document in documents:
        check_id(document.id, document.source or "a document to write")
        fields = {"text": document.text, "title": document.title}
        for field, value in fields.items():
            if not isinstance(value, str):
                raise InputError(
                    f"{_place(document)}document {document.id!r}: {field} is "
                    f"{type(value).__name__}, not a string"
                )
        if not document.content:
            raise InputError(f"{_place(document)}document {document.id!r} is empty; give it text")
        first = seen.setdefault(document.id, document)
        if first is not document:
            raise DocumentConflictError(
                f"{_place(document)}duplicate document id {document.id!r} in one change (first "
                f"at {first.source or 'an earlier document'}); ids must be unique"
            )


def _place(document: Document) -> str:
    return f"{document.source}: " if document.source else ""


def _preview(ids: list[str]) -> str:
    shown = ", ".join(repr(doc_id) for doc_id in ids[:_PREVIEW])
    return shown + (f" and {len(ids) - _PREVIEW} more" if len(ids) > _PREVIEW else "")
