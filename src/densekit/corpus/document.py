"""The unit of text that flows through densekit."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A document as read from a corpus.

    ``source`` says where it came from (``corpus.jsonl:12``) so that later errors about this
    document can point back at the input.
    """

    id: str
    text: str
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def is_empty(self) -> bool:
        """No text and no title but whitespace (checked without copying a huge text)."""
        return all(not part or part.isspace() for part in (self.text, self.title))

    @property
    def content(self) -> str:
        """Title and body as one string, the way BEIR and MTEB feed documents to models."""
        return f"{self.title} {self.text}".strip() if self.title else self.text.strip()


def metadata_value(value: Any) -> Any:
    """``value`` as JSON holds it, for a document's metadata: numbers, text, booleans, null,
    lists and objects as they are; dates and timestamps as ISO text, numpy values as numbers;
    anything else as its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity (a DataFrame's empty cell is NaN)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes | bytearray):
        return None  # not text: nothing a filter or a reader of the JSON could use
    if isinstance(value, Mapping):
        return {str(key): metadata_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [metadata_value(item) for item in value]
    if hasattr(value, "isoformat"):  # datetime, date, pandas Timestamp
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return metadata_value(value.tolist())
    return str(value)


_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def cell_value(cell: str) -> str | int | float | bool:
    """A CSV/TSV cell as the metadata value it reads as: a number written as one (2020, -1.5;
    not 007 or 1,000, which stay text), true or false, or else its text."""
    if _NUMBER.fullmatch(cell):
        if cell.lstrip("-").isdigit():
            number = int(cell)
            return number if -(2**63) <= number < 2**63 else cell  # what SQLite can hold
        number = float(cell)
        return number if math.isfinite(number) else cell
    if cell in ("true", "false"):
        return cell == "true"
    return cell
