"""Documents given in memory: Documents, dicts, a pandas DataFrame, a Hugging Face Dataset, or
any iterable of those (a generator is streamed once, as a file is).

Dicts, rows and records are read as JSON-lines records are (:mod:`densekit.corpus.readers`):
the id, text and title fields are detected (``_id``/``id``/..., ``text``/``contents``/...,
``title``) or named by ``fields``; the other fields become metadata. An error names the item
(``documents[3]``, ``DataFrame row 3``) and what to do.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from densekit.corpus.document import Document, metadata_value
from densekit.corpus.readers import (
    EmptyPolicy,
    FieldNames,
    ReadStats,
    _record_to_document,
    _resolve_fields,
    counted_documents,
)
from densekit.errors import InputError

FRAME_CHUNK = 10_000  # DataFrame rows turned into records at a time: memory stays bounded


def is_in_memory(corpus: object) -> bool:
    """Whether ``corpus`` is documents in memory rather than a path to a file or folder."""
    return not isinstance(corpus, str | bytes) and not hasattr(corpus, "__fspath__")


def documents_from(
    source: object, fields: FieldNames | None = None, what: str = "documents"
) -> Iterator[Document]:
    """The :class:`Document` of each item of ``source``, streamed (see the module notes)."""
    fields = fields or FieldNames()
    kind = type(source).__module__.split(".")[0]
    if kind == "pandas" and hasattr(source, "columns"):
        yield from _frame_documents(source, fields)
        return
    if kind == "datasets" and hasattr(source, "column_names"):
        yield from _records_documents(iter(source), fields, "Dataset row")
        return
    if isinstance(source, Mapping | Document) or not isinstance(source, Iterable):
        raise InputError(
            f"{what}: expected documents (an iterable of densekit.Document or dicts with id and "
            f"text, a pandas DataFrame or a datasets.Dataset), got {type(source).__name__}"
        )
    items = iter(source)
    first = next(items, _NONE)
    if first is _NONE:
        return
    items = itertools.chain([first], items)
    if isinstance(first, Document):
        for number, item in enumerate(items):
            if not isinstance(item, Document):
                raise _mixed(what, number, item, "densekit.Document")
            yield item
        return
    if isinstance(first, Mapping):
        yield from _records_documents(items, fields, what, brackets=True)
        return
    raise _not_a_document(what, 0, first)


def _records_documents(
    records: Iterator[Any], fields: FieldNames, what: str, *, brackets: bool = False
) -> Iterator[Document]:
    names = None
    for number, record in enumerate(records):
        where = f"{what}[{number}]" if brackets else f"{what} {number}"
        if not isinstance(record, Mapping):
            raise (
                _mixed(what, number, record, "dict")
                if brackets
                else _not_a_document(what, number, record)
            )
        if names is None:
            names = _resolve_fields(fields, record.keys(), where)
        yield _record_to_document(_without_missing(record), names, where)


def _frame_documents(frame: Any, fields: FieldNames) -> Iterator[Document]:
    columns = [str(column) for column in frame.columns]
    names = _resolve_fields(fields, columns, "DataFrame (columns)")
    for start in range(0, len(frame), FRAME_CHUNK):
        rows = frame.iloc[start : start + FRAME_CHUNK].to_dict("records")
        for offset, record in enumerate(rows):
            where = f"DataFrame row {start + offset}"
            yield _record_to_document(_without_missing(record), names, where)


_NONE = object()  # an iterable's end, told apart from a None item


def _without_missing(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record without its missing cells (None, NaN: a DataFrame's empty title or metadata),
    its values as JSON holds them (a timestamp as ISO text, a numpy number as a number)."""
    return {
        str(key): metadata_value(value)
        for key, value in record.items()
        if value is not None and not (isinstance(value, float) and math.isnan(value))
    }


def _mixed(what: str, number: int, item: object, expected: str) -> InputError:
    return InputError(
        f"{what}[{number}]: a {type(item).__name__} among items that are each a {expected}; "
        "give all densekit.Document or all dicts"
    )


def _not_a_document(what: str, number: int, item: object) -> InputError:
    return InputError(
        f"{what}[{number}]: a {type(item).__name__} is not a document; give densekit.Document "
        "or dicts with id and text (and title, metadata fields)"
    )


class MemoryCorpus:
    """Documents in memory, read as :class:`~densekit.corpus.readers.CorpusReader` reads a
    file (the same skipping of empty documents and counts), once."""

    format = "memory"

    def __init__(
        self, source: object, *, fields: FieldNames | None = None, on_empty: EmptyPolicy = "skip"
    ) -> None:
        self._source = source
        self.fields = fields or FieldNames()
        self.on_empty: EmptyPolicy = on_empty
        self.stats = ReadStats()
        # What names the corpus in messages and in the build's resume key.
        self.name = f"documents in memory ({type(source).__name__})"

    @property
    def source(self) -> str:
        return self.name

    def __iter__(self) -> Iterator[Document]:
        self.stats = ReadStats()
        return counted_documents(
            documents_from(self._source, self.fields), self.on_empty, self.stats
        )
