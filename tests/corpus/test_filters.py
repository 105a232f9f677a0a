"""The filter language: what it reads, how it binds, and what it refuses, with the place."""

from __future__ import annotations

import pytest

from densekit.corpus.filters import (
    All,
    AnyOf,
    Comparison,
    Exists,
    Membership,
    Not,
    field_name,
    parse_filter,
)
from densekit.errors import InputError


def test_reads_comparisons_lists_and_the_three_joins() -> None:
    parsed = parse_filter("year >= 2020 and topic in ('ml', \"ir\") and not draft = true")
    assert parsed.condition == All(
        (
            Comparison(("year",), ">=", 2020),
            Membership(("topic",), ("ml", "ir")),
            Not(Comparison(("draft",), "=", True)),
        )
    )
    assert parsed.fields == [("year",), ("topic",), ("draft",)]


def test_and_binds_tighter_than_or_and_parentheses_regroup() -> None:
    a, b, c = (Comparison((name,), "=", 1) for name in "abc")
    assert parse_filter("a = 1 or b = 1 and c = 1").condition == AnyOf((a, All((b, c))))
    assert parse_filter("(a = 1 or b = 1) and c = 1").condition == All((AnyOf((a, b)), c))
    assert parse_filter("not a = 1 or b = 1").condition == AnyOf((Not(a), b))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("x = -3", -3),
        ("x = 2.5", 2.5),
        ("x = 1e3", 1000.0),
        ("x = 'it\\'s'", "it's"),
        ('x = "2020-01-01"', "2020-01-01"),
        ("x = FALSE", False),
    ],
)
def test_values_keep_their_types(text: str, value: object) -> None:
    condition = parse_filter(text).condition
    assert isinstance(condition, Comparison)
    assert condition.value == value and type(condition.value) is type(value)


def test_fields_nest_with_dots_and_backquotes_take_any_name() -> None:
    parsed = parse_filter("meta.source = 'x' and `my field` exists and x not in (1, 2,)")
    assert parsed.fields == [("meta", "source"), ("my field",), ("x",)]
    assert parsed.condition.parts[1] == Exists(("my field",))  # type: ignore[union-attr]
    assert parsed.condition.parts[2] == Membership(("x",), (1, 2), negated=True)  # type: ignore[union-attr]
    assert field_name(("meta", "my field")) == "meta.`my field`"


def test_operator_spellings() -> None:
    assert parse_filter("a == 1").condition == Comparison(("a",), "=", 1)
    assert parse_filter("a <> 1").condition == Comparison(("a",), "!=", 1)


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("year >=", 8, "expected a value"),
        ("year = ml", 8, "quote text and dates"),
        ("year 2020", 6, "expected one of"),
        ("(a = 1", 7, "')' to close"),
        ("a = 1 b = 2", 7, "expected and, or or the end"),
        ("and = 1", 1, "keyword"),
        ("x < true", 3, "does not order true and false"),
        ("x = 2020-01-01", 9, "quote dates"),
        ("x = 1 @", 7, "unexpected '@'"),
        ("x in 1", 6, "'(' and a list"),
        ("", 1, "expected a field name"),
        ("x = 99999999999999999999", 5, "an integer past what 64 bits hold"),
        ("x = 1e999", 5, "a number past what 64 bits hold"),
        ('`a"b` = 1', 1, "a field name cannot hold"),
    ],
)
def test_syntax_errors_name_the_column_and_what_was_expected(
    text: str, column: int, words: str
) -> None:
    with pytest.raises(InputError) as error:
        parse_filter(text, source="--filter")
    message = str(error.value)
    assert message.startswith(f"--filter: column {column}: ")
    assert words in message
    # The text is shown with a caret under the column.
    lines = message.splitlines()
    assert lines[1] == f"  {text}" and lines[2] == "  " + " " * (column - 1) + "^"


def test_refuses_what_would_make_it_work_without_bound() -> None:
    with pytest.raises(InputError, match="longer than"):
        parse_filter("a = 1 or " * 1000 + "a = 1")
    with pytest.raises(InputError, match="nested deeper"):
        parse_filter("(" * 40 + "a = 1" + ")" * 40)
    with pytest.raises(InputError, match="nested deeper"):
        parse_filter("not " * 995 + "a = 1")
    with pytest.raises(InputError, match="is text"):
        parse_filter(2020)  # type: ignore[arg-type]
