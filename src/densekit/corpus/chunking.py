"""Split long documents into overlapping windows of tokens.

Windows are cut on the encoder's own tokens, so a window of ``size`` tokens is exactly what the
model sees, and are mapped back to character offsets so each chunk is a clean slice of the
original text. Search results over chunks are aggregated back to documents by max score.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from densekit.corpus.document import Document
from densekit.errors import InputError

# Characters tokenised at a time when chunking: ~1 MB of text, some tens of MB of spans.
BLOCK_CHARS = 1 << 20
_SPACES = " \n\t\r"

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


SECTIONS_KEY = "_sections"
"""Metadata of a document read from structured text (Markdown, HTML): where in its text each
section (a heading and what follows) starts. A document too long for one window is cut at
these first, then each section into windows: no chunk spans two sections."""


def document_passages(
    document: Document, spans_of: TokenSpans, config: ChunkConfig | None
) -> list[tuple[str, str]]:
    """``(passage id, text)`` pairs: the whole document, or ``id#n`` for its n-th window."""
    if config is None:
        return [(document.id, document.content)]
    windows = chunk_text(document.content, spans_of, config)
    starts = section_starts(document)
    if starts:
        first_two = list(itertools.islice(windows, 2))
        if len(first_two) == 1:  # fits in one window: whole, as any document
            windows = iter(first_two)
        else:
            windows = (
                window
                for section in _sections(document, starts)
                for window in chunk_text(section, spans_of, config)
            )
    return [(f"{document.id}#{number}", text) for number, text in enumerate(windows)]


def section_starts(document: Document) -> list[int]:
    """The valid section starts of ``document``'s metadata, sorted (none: not structured)."""
    given = document.metadata.get(SECTIONS_KEY) if document.metadata else None
    if not isinstance(given, list):
        return []
    size = len(document.text)
    return sorted({at for at in given if isinstance(at, int) and 0 < at < size})


def _sections(document: Document, starts: list[int]) -> Iterator[str]:
    """The document's sections, the title with the first; blank ones left out."""
    bounds = [0, *starts, len(document.text)]
    for number, (start, end) in enumerate(itertools.pairwise(bounds)):
        text = document.text[start:end].strip()
        if number == 0 and document.title.strip():
            text = f"{document.title.strip()} {text}".strip()
        if text:
            yield text


def chunk_text(text: str, spans_of: TokenSpans, config: ChunkConfig) -> Iterator[str]:
    """Yield the windows of ``text``; a text that fits in one window is yielded whole. The
    tokens are read block by block, so a huge text costs one block of token spans at a time."""
    spans = block_spans(text, spans_of, BLOCK_CHARS)
    ahead = list(itertools.islice(spans, config.size + 1))  # one more: is there a next window?
    if len(ahead) <= config.size:
        yield text
        return
    while True:
        window = ahead[: config.size]
        yield text[window[0][0] : window[-1][1]]
        if len(ahead) <= config.size:  # this window reached the last token
            return
        ahead = ahead[config.stride :]
        ahead.extend(itertools.islice(spans, config.size + 1 - len(ahead)))


def block_spans(
    text: str, spans_of: TokenSpans, block: int = BLOCK_CHARS
) -> Iterator[tuple[int, int]]:
    """The token spans of ``text``, tokenised in blocks of about ``block`` characters cut before
    a whitespace (where every tokenizer splits words, so the tokens are those of the whole)."""
    start = 0
    while start < len(text):
        end = _block_end(text, start, block)
        for first, last in spans_of(text[start:end]):
            yield first + start, last + start
        start = end


def _block_end(text: str, start: int, block: int) -> int:
    """Before the last whitespace of the block's second half, else before the first one after
    the block (one word longer than a block is read whole), else the end of the text."""
    if len(text) - start <= block:
        return len(text)
    limit = start + block
    before = last_space(text, start + block // 2, limit)
    if before is not None:
        return before
    after = [found for space in _SPACES if (found := text.find(space, limit)) >= 0]
    return min(after) if after else len(text)


def last_space(text: str, start: int, end: int) -> int | None:
    """Where the last whitespace of ``text[start:end]`` is: a cut there splits no word, for
    any tokenizer."""
    found = max(text.rfind(space, start, end) for space in _SPACES)
    return found if found >= 0 else None
