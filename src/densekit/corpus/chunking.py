"""Split long documents into overlapping windows of tokens.

Windows are cut on the encoder's own tokens, so a window of ``size`` tokens is exactly what the
model sees, and are mapped back to character offsets so each chunk is a clean slice of the
original text. Search results over chunks are aggregated back to documents by max score.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from densekit.corpus.document import Document
from densekit.errors import InputError

TokenSpans = Callable[[str], Sequence[tuple[int, int]]]
"""Character spans ``(start, end)`` of the tokens of a text, in order, special tokens excluded."""


@dataclass(frozen=True)
class ChunkConfig:
    """Windows of ``size`` tokens; consecutive windows share ``overlap`` tokens."""

    size: int
    overlap: int = 0

    def __post_init__(self) -> None:
        if self.size < 1:
            raise InputError(f"chunk size must be at least 1 token, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise InputError(
                f"chunk overlap must be in [0, size), got overlap={self.overlap}, size={self.size}"
            )

    @property
    def stride(self) -> int:
        return self.size - self.overlap


def document_passages(
    document: Document, spans_of: TokenSpans, config: ChunkConfig | None
) -> list[tuple[str, str]]:
    """``(passage id, text)`` pairs: the whole document, or ``id#n`` for its n-th window."""
    if config is None:
        return [(document.id, document.content)]
    windows = chunk_text(document.content, spans_of, config)
    return [(f"{document.id}#{number}", text) for number, text in enumerate(windows)]


def chunk_text(text: str, spans_of: TokenSpans, config: ChunkConfig) -> Iterator[str]:
    """Yield the windows of ``text``; a text that fits in one window is yielded whole."""
    spans = spans_of(text)
    if len(spans) <= config.size:
        yield text
        return
    for start in range(0, len(spans), config.stride):
        window = spans[start : start + config.size]
        yield text[window[0][0] : window[-1][1]]
        if start + config.size >= len(spans):
            return
