"""Filters compiled to SQLite: the same documents as the language's rules read in Python, over
random metadata of every type; checks against what the documents hold."""

from __future__ import annotations

import operator
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from densekit.corpus.document import Document
from densekit.corpus.filters import (
    ID_FIELD,
    All,
    AnyOf,
    Condition,
    Exists,
    Membership,
    Not,
    parse_filter,
)
from densekit.errors import InputError
from densekit.store.document_filters import DocumentFilters, check_filter
from densekit.store.documents import DocumentStore, DocumentWriter

_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text" if isinstance(value, str) else None


def _values(metadata: dict[str, Any], field: tuple[str, ...]) -> list[Any]:
    """A field's values as the language reads them: a scalar, or a list's scalar items."""
    value: Any = metadata
    for key in field:
        if not isinstance(value, dict) or key not in value:
            return []
        value = value[key]
    items = value if isinstance(value, list) else [value]
    return [item for item in items if _kind(item) is not None]


def _equal(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and a == b


def matches(condition: Condition, doc_id: str, metadata: dict[str, Any]) -> bool:
    """The rules of densekit.corpus.filters, written out in Python."""
    if isinstance(condition, All):
        return all(matches(part, doc_id, metadata) for part in condition.parts)
    if isinstance(condition, AnyOf):
        return any(matches(part, doc_id, metadata) for part in condition.parts)
    if isinstance(condition, Not):
        return not matches(condition.part, doc_id, metadata)
    values = [doc_id] if condition.field == ID_FIELD else _values(metadata, condition.field)
    if isinstance(condition, Exists):
        if condition.field == ID_FIELD:
            return True
        value: Any = metadata
        for key in condition.field:
            value = value.get(key) if isinstance(value, dict) else None
        return value is not None
    if isinstance(condition, Membership):
        found = any(_equal(v, x) for v in values for x in condition.values)
        return not found if condition.negated else found
    if condition.operator in ("=", "!="):
        found = any(_equal(v, condition.value) for v in values)
        return found if condition.operator == "=" else not found
    compare = _ORDER[condition.operator]
    return any(_kind(v) == _kind(condition.value) and compare(v, condition.value) for v in values)


TEXTS = ["ml", "ir", "nlp", "2020-01-01", "2021-06-30", "Ünïcode", ""]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.25:
        return rng.randint(-3, 3)
    if roll < 0.35:
        return rng.choice([0.5, -1.5, 2.0])
    if roll < 0.55:
        return rng.choice(TEXTS)
    if roll < 0.65:
        return rng.random() < 0.5
    if roll < 0.68:
        return None
    if roll < 0.9 or depth:
        return [rng.choice([*TEXTS, 1, 2, True]) for _ in range(rng.randint(0, 3))]
    return {"inner": _random_value(rng, depth + 1), "x": 1}


def _random_literal(rng: random.Random) -> Any:
    return rng.choice([*TEXTS, -1, 0, 1, 2, 0.5, 2.0, True, False])


def _random_condition(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth < 3 and roll < 0.3:
        joiner = rng.choice([" and ", " or "])
        return "(" + joiner.join(_random_condition(rng, depth + 1) for _ in range(2)) + ")"
    if depth < 3 and roll < 0.4:
        return "not " + _random_condition(rng, depth + 1)
    field = rng.choice(["a", "b", "c", "a.inner", "id"])
    kind = rng.random()
    if kind < 0.1:
        return f"{field} exists"
    if kind < 0.3:
        values = ", ".join(_literal(_random_literal(rng)) for _ in range(rng.randint(1, 3)))
        return f"{field} {'not ' if rng.random() < 0.3 else ''}in ({values})"
    value = _random_literal(rng)
    operators = ["=", "!="] if isinstance(value, bool) else ["=", "!=", "<", "<=", ">", ">="]
    return f"{field} {rng.choice(operators)} {_literal(value)}"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _store(path: Path, metadata: list[dict[str, Any]]) -> DocumentStore:
    writer = DocumentWriter(path)
    writer.add_all(
        Document(f"d{row}", "text", metadata=meta, source=f"corpus.jsonl:{row + 1}")
        for row, meta in enumerate(metadata)
    )
    writer.close()
    return DocumentStore(path)


def test_masks_match_the_rules_over_random_metadata_and_filters(tmp_path: Path) -> None:
    rng = random.Random(7)
    metadata = [
        {name: _random_value(rng) for name in "abc" if rng.random() < 0.85} for _ in range(200)
    ]
    store = _store(tmp_path / "documents.sqlite", metadata)
    filters = DocumentFilters(store.connection, len(metadata))
    compared = 0
    for _ in range(300):
        text = _random_condition(rng)
        parsed = parse_filter(text)
        expected = np.array(
            [matches(parsed.condition, f"d{row}", meta) for row, meta in enumerate(metadata)]
        )
        mask = filters.mask(parsed, check=False)
        assert np.array_equal(mask, expected), text
        compared += int(expected.sum())
    assert compared > 1000  # the filters matched documents, not only nothing
    store.close()


@pytest.fixture
def filters(tmp_path: Path) -> DocumentFilters:
    metadata = [
        {"year": 2019, "topic": "ml", "tags": ["a", "b"], "draft": True, "meta": {"src": "x"}},
        {"year": 2021, "topic": "ir", "tags": ["c"], "draft": False, "score": 0.5},
        {"year": 2023, "topic": "nlp", "tags": [], "date": "2023-02-01"},
        {},
    ]
    store = _store(tmp_path / "documents.sqlite", metadata)
    return DocumentFilters(store.connection, len(metadata) + 1)  # one deleted row at the end


def test_rows_outside_the_documents_never_match(filters: DocumentFilters) -> None:
    assert filters.mask("year > 2000").tolist() == [True, True, True, False, False]
    assert filters.mask("not year > 2000").tolist() == [False, False, False, True, False]


def test_typed_lists_nested_fields_and_ids(filters: DocumentFilters) -> None:
    assert filters.mask("tags = 'c'").tolist()[:4] == [False, True, False, False]
    assert filters.mask("tags not in ('a', 'c')").tolist()[:4] == [False, False, True, True]
    assert filters.mask("meta.src = 'x'").tolist()[:4] == [True, False, False, False]
    assert filters.mask("draft != true").tolist()[:4] == [False, True, True, True]
    assert filters.mask("id in ('d0', 'd3') and tags exists").tolist()[:4] == [
        True,
        False,
        False,
        False,
    ]
    assert filters.mask("date >= '2023-01-01'").tolist()[:4] == [False, False, True, False]
    # A mask is shared by later searches: kept, and read-only.
    mask = filters.mask("year >= 2021")
    assert filters.mask("year >= 2021") is mask and not mask.flags.writeable


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yeer > 1", "no document has a field yeer; their fields: date, draft, meta"),
        (
            "year > '2020'",
            "year holds numbers, never text; compare it with a value of its type "
            "(numbers without quotes)",
        ),
        ("draft = 1", "draft holds true/false, never numbers"),
        ("tags = 3", "tags holds text, never numbers"),
        ("id = 3", "id is text"),
        ("meta = 'x'", "meta holds objects or lists of them, never text; name a value inside"),
    ],
)
def test_refuses_fields_and_types_the_documents_never_hold(
    filters: DocumentFilters, text: str, message: str
) -> None:
    with pytest.raises(
        InputError, match="^--filter: " + message.replace("(", r"\(").replace(")", r"\)")
    ):
        filters.mask(parse_filter(text, source="--filter"))


def test_a_field_is_checked_across_every_part(tmp_path: Path) -> None:
    one = _store(tmp_path / "one.sqlite", [{"year": 2020}])
    two = _store(tmp_path / "two.sqlite", [{"lang": "de"}])
    parts = [DocumentFilters(one.connection, 1), DocumentFilters(two.connection, 1)]
    check_filter(parse_filter("lang = 'de' or year = 2020"), parts)
    with pytest.raises(InputError, match="no document has a field country"):
        check_filter(parse_filter("country = 'de'"), parts)


def test_exists_sees_objects_and_empty_lists_and_values_inside_objects_match(
    filters: DocumentFilters,
) -> None:
    assert filters.mask("meta exists").tolist()[:4] == [True, False, False, False]
    assert filters.mask("tags exists").tolist()[:4] == [True, True, True, False]  # [] counts
    assert filters.mask("meta.src exists and meta.src != 'y'").tolist()[:4] == [
        True,
        False,
        False,
        False,
    ]


def test_values_json_cannot_hold_are_stored_as_null_and_filters_still_run(tmp_path: Path) -> None:
    metadata = [
        {"score": float("nan"), "year": 1, "raw": b"bytes"},
        {"score": 0.5, "year": 2, "inner": {"x": float("inf")}},
    ]
    store = _store(tmp_path / "documents.sqlite", metadata)
    assert store.get("d0").metadata == {"score": None, "year": 1, "raw": None}
    assert store.get("d1").metadata["inner"] == {"x": None}
    filters = DocumentFilters(store.connection, 2)
    assert filters.mask("year = 1").tolist() == [True, False]
    assert filters.mask("score exists").tolist() == [False, True]
