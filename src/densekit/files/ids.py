"""What a document id may be: defined once, checked wherever ids enter densekit.

An id is a string of 1 to :data:`MAX_ID_CHARS` characters with no control characters (newline,
tab, NUL and the rest of Unicode's Cc), no lone surrogates, no line or paragraph separators, no
whitespace at either end, and not ``.`` or ``..`` (URL paths drop those segments, so no HTTP
client could fetch them). Within those rules any character is fine: ``/``, ``%``, ``?``, ``#``,
spaces and any script.

JSON numbers, booleans and other values are refused rather than turned into text (``1`` and
``1.0`` would become different ids by accident). Formats whose cells are text by nature (CSV,
TSV, one id per line) give text ids, with the whitespace around them dropped.

Collections written before these rules may hold other ids: they are read, searched and deleted
as stored. Only new input is checked.
"""

from __future__ import annotations

import re

from densekit.errors import InputError

MAX_ID_CHARS = 512

# Unicode's Cc (C0, DEL, C1), lone surrogates (Cs), and U+2028/U+2029, which end a line for
# str.splitlines and JavaScript alike.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
# Not text: no file, database or JSON encoder writes one (only a JSON \u escape reads as one).
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_DOT_SEGMENTS = (".", "..")
_JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", dict: "an object"}


def id_problem(value: object) -> str | None:
    """Why ``value`` cannot be a new id, and what to do; None when it can."""
    if not isinstance(value, str):
        if value is None or isinstance(value, list):
            kind = "null" if value is None else "an array"
        else:
            kind = _JSON_TYPES.get(type(value), f"a {type(value).__name__}")
        if kind == "a number":
            return f'is a number, not a string; write it as text, e.g. "{value}"'
        return f"is {kind}, not a string; ids are text"
    if not value:
        return "is empty; every document needs an id"
    if len(value) > MAX_ID_CHARS:
        return f"has {len(value)} characters; ids have at most {MAX_ID_CHARS}"
    forbidden = _FORBIDDEN.search(value)
    if forbidden is not None:
        char = forbidden.group()
        what = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
        return (
            f"holds {what} ({char!r} at position {forbidden.start()}); ids are one line "
            "of printable text"
        )
    if value != value.strip():
        return "starts or ends with whitespace; remove it"
    if value in _DOT_SEGMENTS:
        return "is a bare '.' or '..', which URL paths drop; choose another id"
    return None


def check_id(value: object, where: str) -> str:
    """``value`` as an id, or an InputError naming ``where`` (file:line and field)."""
    problem = id_problem(value)
    if problem is not None:
        raise InputError(f"{where}: id {shown(value)} {problem}")
    assert isinstance(value, str)
    return value


def stored_id(value: object, where: str) -> str:
    """``value`` as the id of a stored document (to delete or fetch): any string that can be
    looked up, since a collection may hold ids written before these rules."""
    if not isinstance(value, str) or LONE_SURROGATE.search(value):
        raise InputError(f"{where}: id {shown(value)} {id_problem(value)}")
    return value


def text_id(cell: str, where: str) -> str:
    """An id from a format where ids are text (a CSV/TSV cell, a line): the whitespace around
    it is formatting, not part of the id."""
    return check_id(cell.strip(), where)


def shown(value: object, width: int = 60) -> str:
    """A short printable form of a (possibly bad) id for messages."""
    text = repr(value)  # escapes control characters and surrogates: safe to print and send
    return text if len(text) <= width else text[: width - 4] + "...'"
