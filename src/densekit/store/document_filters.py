"""Filters compiled to SQLite over a collection's documents, and the document masks they give.

A :class:`~densekit.corpus.filters.Filter` is checked against what the documents hold (a field
no document has, or a value of a type the field never holds, is refused with the types it does
hold), compiled to one ``WHERE`` clause over the JSON metadata, and run once per snapshot: the
answer is a boolean per document row, which every index applies inside its search.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from densekit.corpus.filters import (
    ID_FIELD,
    All,
    AnyOf,
    Comparison,
    Condition,
    Exists,
    Filter,
    Membership,
    Not,
    Value,
    field_name,
    parse_filter,
)
from densekit.errors import CollectionError, InputError

# Masks kept per snapshot: a server's repeated filters cost one scan each.
_KEPT_MASKS = 32
# json_each over a field: a scalar gives one row (key NULL), a list its items (integer keys);
# an object's members (text keys) are not values of the field.
_VALUES = "json_each(documents.metadata, ?) AS j WHERE (j.key IS NULL OR typeof(j.key) = 'integer')"
_KIND_OF_TYPE = {"integer": "number", "real": "number", "text": "text", "true": "bool"}
_KIND_OF_TYPE["false"] = "bool"
_TYPES_OF_KIND = {"number": "('integer', 'real')", "text": "('text')", "bool": "('true', 'false')"}
_SHOWN_KIND = {
    "number": "numbers",
    "text": "text",
    "bool": "true/false",
    "structured": "objects or lists of them",
}
_PRESENT = (
    "SELECT 1 FROM documents WHERE COALESCE(json_type(documents.metadata, ?), 'null') != 'null' "
    "LIMIT 1"
)
_NO_METADATA = "the documents hold no metadata (only id can be filtered)"


def value_kind(value: Value) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "text"


def json_path(field: tuple[str, ...]) -> str:
    """The SQLite JSON path of a field (the parser refuses names it cannot quote)."""
    return "$" + "".join(f'."{part}"' for part in field)


class DocumentFilters:
    """The filters of one snapshot's documents: checked, compiled and their masks kept."""

    def __init__(self, connection: sqlite3.Connection, document_rows: int) -> None:
        self.connection = connection
        self.document_rows = document_rows
        self._masks: OrderedDict[str, np.ndarray] = OrderedDict()
        self._kinds: dict[tuple[str, ...], frozenset[str]] = {}
        self._lock = threading.Lock()

    def mask(self, where: str | Filter, *, check: bool = True) -> np.ndarray:
        """A boolean per document row: true where the document matches ``where``; ``check``:
        refuse it first as :func:`check_filter` does (a sharded collection checks across its
        shards instead)."""
        parsed = parse_filter(where)
        with self._lock:
            if parsed.text in self._masks:
                self._masks.move_to_end(parsed.text)
                return self._masks[parsed.text]
        if check:
            check_filter(parsed, [self])
        clause, parameters = compile_condition(parsed.condition)
        found = self._run(f"SELECT row FROM documents WHERE {clause}", parameters)
        rows = np.fromiter((row for (row,) in found), dtype=np.int64, count=len(found))
        mask = np.zeros(self.document_rows, dtype=bool)
        mask[rows] = True
        mask.setflags(write=False)  # shared by every search with this filter
        with self._lock:
            self._masks[parsed.text] = mask
            while len(self._masks) > _KEPT_MASKS:
                self._masks.popitem(last=False)
        return mask

    def kinds(self, field: tuple[str, ...]) -> frozenset[str]:
        """The kinds of value documents hold in ``field``: number, text, bool (scalars and list
        items), or ``structured`` when it is there only as objects or lists of them; empty
        when no document has it (or only null)."""
        if field not in self._kinds:
            path = json_path(field)
            found = self._run(f"SELECT DISTINCT j.type FROM documents, {_VALUES}", [path])
            kinds = {_KIND_OF_TYPE[kind] for (kind,) in found if kind in _KIND_OF_TYPE}
            if not kinds and self._run(_PRESENT, [path]):
                kinds.add("structured")
            self._kinds[field] = frozenset(kinds)
        return self._kinds[field]

    def _run(self, query: str, parameters: Sequence[object]) -> list[tuple]:
        try:
            return self.connection.execute(query, parameters).fetchall()
        except sqlite3.OperationalError as exc:  # metadata SQLite cannot read as JSON
            raise CollectionError(
                f"the documents' metadata cannot be filtered ({exc}); rebuild the collection "
                "with this densekit, which stores it as plain JSON"
            ) from None

    def fields_hint(self) -> str:
        keys = [
            key
            for (key,) in self._run(
                "SELECT DISTINCT j.key FROM documents, json_each(documents.metadata) AS j "
                "ORDER BY j.key LIMIT 21",
                [],
            )
        ]
        if not keys:
            return _NO_METADATA
        shown = ", ".join(field_name((key,)) for key in keys[:20])
        return f"their fields: {shown}{', ...' if len(keys) > 20 else ''} (and id)"


def check_filter(parsed: Filter, collections: Sequence[DocumentFilters]) -> None:
    """Refuse fields no document of ``collections`` has, and values of a type their field
    never holds there (the message begins with where the filter was given)."""
    source = parsed.source
    for field, kinds in _literal_kinds(parsed.condition).items():
        if field == ID_FIELD:
            if kinds - {"text"}:
                raise InputError(f"{source}: id is text; quote the ids ('d1')")
            continue
        held = frozenset().union(*(filters.kinds(field) for filters in collections))
        if not held:
            hints = [filters.fields_hint() for filters in collections]
            hint = next((h for h in hints if h != _NO_METADATA), _NO_METADATA)
            raise InputError(f"{source}: no document has a field {field_name(field)}; {hint}")
        for kind in sorted(kinds - held):
            shown = ", ".join(_SHOWN_KIND[k] for k in sorted(held))
            advice = "compare it with a value of its type"
            if "number" in held:
                advice += " (numbers without quotes)"
            if "structured" in held:
                advice = "name a value inside it (a.b reads key b of object a, not of a list)"
            raise InputError(
                f"{source}: {field_name(field)} holds {shown}, never {_SHOWN_KIND[kind]}; {advice}"
            )


def _literal_kinds(condition: Condition) -> dict[tuple[str, ...], set[str]]:
    found: dict[tuple[str, ...], set[str]] = {}
    stack = [condition]
    while stack:
        node = stack.pop()
        if isinstance(node, All | AnyOf):
            stack.extend(node.parts)
        elif isinstance(node, Not):
            stack.append(node.part)
        elif isinstance(node, Comparison):
            found.setdefault(node.field, set()).add(value_kind(node.value))
        elif isinstance(node, Membership):
            found.setdefault(node.field, set()).update(value_kind(v) for v in node.values)
        else:
            found.setdefault(node.field, set())
    return found


def compile_condition(condition: Condition) -> tuple[str, list[object]]:
    """``condition`` as an SQLite expression over the ``documents`` table, and its parameters."""
    if isinstance(condition, All | AnyOf):
        joiner = " AND " if isinstance(condition, All) else " OR "
        compiled = [compile_condition(part) for part in condition.parts]
        return (
            "(" + joiner.join(sql for sql, _ in compiled) + ")",
            [p for _, parameters in compiled for p in parameters],
        )
    if isinstance(condition, Not):
        sql, parameters = compile_condition(condition.part)
        return f"(NOT {sql})", parameters
    if isinstance(condition, Exists):
        if condition.field == ID_FIELD:
            return "(1)", []
        return "(COALESCE(json_type(documents.metadata, ?), 'null') != 'null')", [
            json_path(condition.field)
        ]
    if isinstance(condition, Membership):
        sql, parameters = _any_equal(condition.field, condition.values)
        return (f"(NOT {sql})" if condition.negated else sql), parameters
    if condition.operator == "!=":
        sql, parameters = _any_equal(condition.field, (condition.value,))
        return f"(NOT {sql})", parameters
    if condition.operator == "=":
        return _any_equal(condition.field, (condition.value,))
    if condition.field == ID_FIELD:  # text: a value of another type never matches
        if value_kind(condition.value) != "text":
            return "(0)", []
        return f"(documents.id {condition.operator} ?)", [condition.value]
    kind = value_kind(condition.value)
    return (
        f"EXISTS (SELECT 1 FROM {_VALUES} AND j.type IN {_TYPES_OF_KIND[kind]} "
        f"AND j.value {condition.operator} ?)",
        [json_path(condition.field), condition.value],
    )


def _any_equal(field: tuple[str, ...], values: Sequence[Value]) -> tuple[str, list[object]]:
    """Whether ``field`` (or any item of it, for a list) equals any of ``values``, by type."""
    if field == ID_FIELD:
        texts = [value for value in values if value_kind(value) == "text"]
        marks = ", ".join("?" * len(texts))
        return (f"(documents.id IN ({marks}))", texts) if texts else ("(0)", [])
    tests, parameters = [], []
    for kind in ("text", "number"):
        same = [v for v in values if value_kind(v) == kind]
        if same:
            marks = ", ".join("?" * len(same))
            tests.append(f"(j.type IN {_TYPES_OF_KIND[kind]} AND j.value IN ({marks}))")
            parameters.extend(same)
    tests += [f"j.type = '{'true' if v else 'false'}'" for v in values if isinstance(v, bool)]
    tests = list(dict.fromkeys(tests))
    return (
        f"EXISTS (SELECT 1 FROM {_VALUES} AND ({' OR '.join(tests)}))",
        [json_path(field), *parameters],
    )
