"""Corpora, queries, judgements and runs named by an ir_datasets id: ``irds:beir/scifact/test``.

ir_datasets (``pip install 'densekit[irds]'``) knows hundreds of IR collections and where their
data is; densekit reads what it has on this machine (``~/.ir_datasets``, or downloads where it
may). Each document's fields become a :class:`Document`: ``doc_id``, ``title`` when it has one,
its text (``text``, ``body`` or ir_datasets' default text), the other fields as metadata.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from densekit.corpus.document import Document, metadata_value
from densekit.errors import InputError, MissingDependencyError

PREFIX = "irds:"
_TEXT_FIELDS = ("text", "body", "passage", "abstract")


def is_irds(name: object) -> bool:
    """Whether ``name`` (a path or text) is an ir_datasets id, ``irds:...``."""
    return str(name).startswith(PREFIX)


def dataset_id(name: object) -> str:
    return str(name)[len(PREFIX) :]


def open_dataset(name: object, has: str | None = None) -> Any:
    """The ir_datasets dataset ``irds:ID``; an unknown id is refused with the ids nearest it,
    and one without ``has`` (docs, queries, qrels, scoreddocs) with what it does provide."""
    try:
        import ir_datasets
    except ImportError:
        raise MissingDependencyError("ir_datasets", "irds") from None
    wanted = dataset_id(name)
    try:
        dataset = ir_datasets.load(wanted)
    except KeyError:
        known = list(ir_datasets.registry)
        near = difflib.get_close_matches(wanted, known, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise InputError(f"{name}: ir_datasets has no dataset {wanted!r}{hint}") from None
    if has is not None and not getattr(dataset, f"has_{has}")():
        parts = [p for p in ("docs", "queries", "qrels", "scoreddocs") if _has(dataset, p)]
        raise InputError(
            f"{name}: this ir_datasets dataset has no {has} (it has {', '.join(parts) or 'none'});"
            " name the one that does (ids with a split, such as beir/scifact/test, have queries "
            "and qrels; the corpus is usually the id without the split)"
        )
    return dataset


def _has(dataset: Any, part: str) -> bool:
    return bool(getattr(dataset, f"has_{part}")())


def read_records(name: object, part: str) -> Iterator[Any]:
    """``part``'s records (``docs``, ``queries``, ``qrels``, ``scoreddocs``) of ``irds:ID``;
    data ir_datasets cannot get here is refused with what to do."""
    dataset = open_dataset(name, part)
    try:
        yield from getattr(dataset, f"{part}_iter")()
    except (OSError, RuntimeError, ConnectionError) as exc:
        raise InputError(
            f"{name}: ir_datasets could not read its {part} ({type(exc).__name__}: {exc}); "
            "put its data in ~/.ir_datasets (ir_datasets' documentation says where each "
            "collection comes from), or set IR_DATASETS_HOME to where it is"
        ) from None


def documents(name: object) -> Iterator[Document]:
    """The documents of ``irds:ID``, as densekit reads a corpus."""
    for number, record in enumerate(read_records(name, "docs"), 1):
        fields = record._asdict()
        text_field = next((f for f in _TEXT_FIELDS if isinstance(fields.get(f), str)), None)
        text = fields[text_field] if text_field else record.default_text()
        title = fields.get("title") if isinstance(fields.get("title"), str) else ""
        used = {"doc_id", "title", text_field}
        metadata = {k: metadata_value(v) for k, v in fields.items() if k not in used}
        metadata = {k: v for k, v in metadata.items() if v not in (None, "", [])}
        yield Document(
            str(record.doc_id), text, title, metadata, source=f"{name}: document {number}"
        )


def queries(name: object) -> dict[str, str]:
    return {str(q.query_id): q.default_text() for q in read_records(name, "queries")}


def qrels(name: object) -> dict[str, dict[str, int]]:
    judged: dict[str, dict[str, int]] = {}
    for row in read_records(name, "qrels"):
        judged.setdefault(str(row.query_id), {})[str(row.doc_id)] = int(row.relevance)
    return judged


def scored_documents(name: object) -> dict[str, dict[str, float]]:
    """The dataset's run (ir_datasets' scoreddocs): query id -> document id -> score."""
    run: dict[str, dict[str, float]] = {}
    for row in read_records(name, "scoreddocs"):
        run.setdefault(str(row.query_id), {})[str(row.doc_id)] = float(row.score)
    return run
