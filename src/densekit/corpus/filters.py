"""The filter language over document metadata, parsed in one place.

    year >= 2020 and topic in ('ml', 'ir') and not draft = true

A filter is comparisons joined by ``and``, ``or``, ``not`` and parentheses. A comparison names a
field (a metadata key; ``a.b`` reads key ``b`` inside ``a``; backquotes take a name as it is,
`` `my field` ``; ``id`` is the document id) and one of:

- ``= != < <= > >=`` and a value: text in single or double quotes, a number, ``true`` or
  ``false``. Dates are ISO text and compare as text (``date >= '2020-01-01'``).
- ``in (v, ...)`` / ``not in (v, ...)``: any of the values.
- ``exists``: the document has the field (not null).

A list of values (``tags = 'ml'``) matches when any of its items does. A value of another type
than the field's never matches, so ``!=`` and ``not in`` match documents that lack the field.

:func:`parse_filter` gives a :class:`Filter`; the store compiles it against a collection's
documents (:mod:`densekit.store.document_filters`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from densekit.errors import InputError

Value = str | int | float | bool
Operator = Literal["=", "!=", "<", "<=", ">", ">="]
OPERATORS: tuple[Operator, ...] = ("=", "!=", "<", "<=", ">", ">=")
# The most a filter may say, so a request cannot make the parser or SQLite work without bound.
MAX_FILTER_CHARS = 4000
MAX_DEPTH = 32


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``field`` is the path of keys into the metadata."""

    field: tuple[str, ...]
    operator: Operator
    value: Value


@dataclass(frozen=True)
class Membership:
    """``field in (values)``, or ``not in`` when ``negated``."""

    field: tuple[str, ...]
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class Exists:
    field: tuple[str, ...]


@dataclass(frozen=True)
class Not:
    part: Condition


@dataclass(frozen=True)
class All:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Condition, ...]


Condition = Comparison | Membership | Exists | Not | All | AnyOf

ID_FIELD = ("id",)


@dataclass(frozen=True)
class Filter:
    """A parsed filter and the text it was read from (which names it in messages)."""

    text: str
    condition: Condition
    source: str = field(default="filter", compare=False)  # where it was given, for messages

    @property
    def fields(self) -> list[tuple[str, ...]]:
        """The fields it reads, each once, in order of appearance."""
        found: dict[tuple[str, ...], None] = {}
        stack: list[Condition] = [self.condition]
        while stack:
            node = stack.pop()
            if isinstance(node, All | AnyOf):
                stack.extend(reversed(node.parts))
            elif isinstance(node, Not):
                stack.append(node.part)
            else:
                found.setdefault(node.field)
        return list(found)


def field_name(path: tuple[str, ...]) -> str:
    """A field as a filter writes it."""
    return ".".join(part if _NAME.fullmatch(part) else f"`{part}`" for part in path)


def parse_filter(text: str | Filter, *, source: str = "filter") -> Filter:
    """Parse ``text``; a syntax error names ``source``, the column and what was expected."""
    if isinstance(text, Filter):
        return text
    if not isinstance(text, str):
        raise InputError(f'{source}: a filter is text, e.g. "year >= 2020"; got {text!r}')
    if len(text) > MAX_FILTER_CHARS:
        raise InputError(f"{source}: longer than {MAX_FILTER_CHARS} characters")
    parser = _Parser(text, source)
    condition = parser.expression(0)
    parser.expect_end()
    return Filter(text, condition, source)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_]))
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<quoted>`[^`]+`)
      | (?P<name>[A-Za-z_][A-Za-z0-9_\-]*)
      | (?P<operator>==|!=|<>|<=|>=|=|<|>)
      | (?P<punct>[(),.])
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "exists", "true", "false"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int  # 1-based, for messages


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.tokens = self._tokens()
        self.position = 0

    def _tokens(self) -> list[_Token]:
        tokens, at = [], 0
        while at < len(self.text):
            if self.text[at:].strip() == "":
                break
            found = _TOKEN.match(self.text, at)
            if found is None or found.lastgroup is None:
                column = at + len(self.text[at:]) - len(self.text[at:].lstrip()) + 1
                self._fail(column, f"unexpected {self.text[column - 1]!r}")
            kind = found.lastgroup
            column = found.start(kind) + 1
            word = found.group(kind)
            if kind == "name" and word.lower() in _KEYWORDS:
                kind, word = "keyword", word.lower()
            tokens.append(_Token(kind, word, column))
            at = found.end()
        return tokens

    # Precedence climbing: or (0) < and (1) < not (2).
    def expression(self, depth: int) -> Condition:
        if depth > MAX_DEPTH:
            self._fail(self._column(), f"nested deeper than {MAX_DEPTH} levels")
        parts = [self._conjunction(depth)]
        while self._accept("keyword", "or"):
            parts.append(self._conjunction(depth))
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    def _conjunction(self, depth: int) -> Condition:
        parts = [self._negation(depth)]
        while self._accept("keyword", "and"):
            parts.append(self._negation(depth))
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def _negation(self, depth: int) -> Condition:
        if depth > MAX_DEPTH:
            self._fail(self._column(), f"nested deeper than {MAX_DEPTH} levels")
        if self._accept("keyword", "not"):
            return Not(self._negation(depth + 1))
        if self._accept("punct", "("):
            inner = self.expression(depth + 1)
            self._expect("punct", ")", "')' to close the '('")
            return inner
        return self._comparison()

    def _comparison(self) -> Condition:
        field = self._field()
        token = self._peek()
        if token is not None and token.kind == "operator":
            self.position += 1
            operator = {"==": "=", "<>": "!="}.get(token.text, token.text)
            value = self._value()
            if isinstance(value, bool) and operator not in ("=", "!="):
                self._fail(token.column, f"{operator} does not order true and false; use = or !=")
            return Comparison(field, operator, value)  # type: ignore[arg-type]
        if self._accept("keyword", "exists"):
            return Exists(field)
        negated = self._accept("keyword", "not")
        if self._accept("keyword", "in"):
            return Membership(field, self._values(), negated)
        self._fail(
            self._column(),
            f"expected one of = != < <= > >=, in, not in or exists after {field_name(field)}",
        )

    def _field(self) -> tuple[str, ...]:
        parts = [self._field_part()]
        while self._accept("punct", "."):
            parts.append(self._field_part())
        return tuple(parts)

    def _field_part(self) -> str:
        token = self._peek()
        if token is not None and token.kind == "name":
            self.position += 1
            return token.text
        if token is not None and token.kind == "quoted":
            self.position += 1
            if '"' in token.text or "\\" in token.text:
                self._fail(token.column, "a field name cannot hold '\"' or '\\'")
            return token.text[1:-1]
        if token is not None and token.kind == "keyword":
            self._fail(
                token.column, f"{token.text!r} is a keyword; write `{token.text}` for a field"
            )
        self._fail(self._column(), "expected a field name")

    def _values(self) -> tuple[Value, ...]:
        self._expect("punct", "(", "'(' and a list of values")
        values = [self._value()]
        while self._accept("punct", ","):
            if self._peek_is("punct", ")"):
                break
            values.append(self._value())
        self._expect("punct", ")", "',' or ')'")
        return tuple(values)

    def _value(self) -> Value:
        token = self._peek()
        if token is None:
            self._fail(len(self.text) + 1, "expected a value")
        self.position += 1
        if token.kind == "number":
            if re.fullmatch(r"[-+]?\d+", token.text):
                whole = int(token.text)
                if not -(2**63) <= whole < 2**63:
                    self._fail(token.column, "an integer past what 64 bits hold")
                return whole
            number = float(token.text)
            if not math.isfinite(number):
                self._fail(token.column, "a number past what 64 bits hold")
            return number
        if token.kind == "string":
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind == "keyword" and token.text in ("true", "false"):
            return token.text == "true"
        hint = " (quote text and dates: 'ml', '2020-01-01')" if token.kind == "name" else ""
        self._fail(token.column, f"expected a value: 'text', a number, true or false{hint}")

    # Token helpers.
    def _peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _peek_is(self, kind: str, text: str) -> bool:
        token = self._peek()
        return token is not None and token.kind == kind and token.text == text

    def _accept(self, kind: str, text: str) -> bool:
        if self._peek_is(kind, text):
            self.position += 1
            return True
        return False

    def _expect(self, kind: str, text: str, wanted: str) -> None:
        if not self._accept(kind, text):
            self._fail(self._column(), f"expected {wanted}")

    def expect_end(self) -> None:
        token = self._peek()
        if token is not None:
            hint = " (quote dates: '2020-01-01')" if token.kind == "number" else ""
            self._fail(token.column, f"expected and, or or the end, found {token.text!r}{hint}")

    def _column(self) -> int:
        token = self._peek()
        return token.column if token is not None else len(self.text) + 1

    def _fail(self, column: int, message: str) -> NoReturn:
        raise InputError(
            f"{self.source}: column {column}: {message}\n  {self.text}\n  {' ' * (column - 1)}^"
        )
