"""The unit of text that flows through densekit."""

from __future__ import annotations

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
