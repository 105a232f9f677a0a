"""The id rules: one definition of what a document id may be."""

from __future__ import annotations

import pytest

from densekit.errors import InputError
from densekit.files.ids import MAX_ID_CHARS, check_id, id_problem, stored_id, text_id

ACCEPTED = [
    "d1",
    "a/b",
    "50%",
    "what?",
    "c#1",
    "two words",
    "café",
    "日本語",
    "...",
    "x" * MAX_ID_CHARS,
]


@pytest.mark.parametrize("value", ACCEPTED)
def test_ids_of_any_printable_text_are_accepted(value: str) -> None:
    assert id_problem(value) is None
    assert check_id(value, "here") == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (7, r"is a number, not a string; write it as text, e\.g\. \"7\""),
        (1.0, "is a number"),
        (True, "is a boolean"),
        ({"a": 1}, "is an object"),
        (["a"], "is an array"),
        (None, "is null"),
        ("", "is empty"),
        ("x" * (MAX_ID_CHARS + 1), f"has {MAX_ID_CHARS + 1} characters"),
        ("a\nb", r"control character \('\\n' at position 1\)"),
        ("a\tb", "control character"),
        ("a\x00b", "control character"),
        ("a\x85", "control character"),
        ("a\u2028b", "control character"),
        ("caf\udce9", r"lone surrogate \('\\udce9' at position 3\)"),
        (" d1", "starts or ends with whitespace"),
        ("d1\u3000", "starts or ends with whitespace"),
        (".", "URL paths drop"),
        ("..", "URL paths drop"),
    ],
)
def test_other_values_are_refused_naming_the_place_and_the_reason(value, reason) -> None:
    with pytest.raises(InputError, match=f"^corpus.jsonl:3: field '_id': id .*({reason})"):
        check_id(value, "corpus.jsonl:3: field '_id'")


def test_text_ids_drop_the_whitespace_around_them_but_keep_the_rules() -> None:
    assert text_id("  d1\r\n", "ids.txt:1") == "d1"
    with pytest.raises(InputError, match=r"ids.txt:2: id 'a\\tb' holds a control"):
        text_id("a\tb\n", "ids.txt:2")


def test_stored_ids_need_only_be_strings_that_can_be_looked_up() -> None:
    assert stored_id(" written before the rules\t", "delete[0]") == " written before the rules\t"
    for value in (7, "caf\udce9"):
        with pytest.raises(InputError, match=r"^delete\[1\]: id "):
            stored_id(value, "delete[1]")
