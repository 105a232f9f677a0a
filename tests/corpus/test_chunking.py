from __future__ import annotations

import re

import pytest

from densekit.corpus import ChunkConfig, chunk_text, chunking
from densekit.corpus.chunking import block_spans
from densekit.errors import InputError


def words(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def test_short_text_is_one_chunk() -> None:
    assert list(chunk_text("a b c", words, ChunkConfig(size=5, overlap=1))) == ["a b c"]


def test_windows_overlap_and_cover_the_text() -> None:
    text = " ".join(f"w{i}" for i in range(10))
    chunks = list(chunk_text(text, words, ChunkConfig(size=4, overlap=1)))
    assert chunks == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]


def test_last_window_may_be_short_and_is_not_repeated() -> None:
    text = " ".join(f"w{i}" for i in range(6))
    assert list(chunk_text(text, words, ChunkConfig(size=4, overlap=0))) == ["w0 w1 w2 w3", "w4 w5"]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (4, 4), (4, -1)])
def test_bad_configs_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(InputError):
        ChunkConfig(size=size, overlap=overlap)


def reference_windows(text: str, config: ChunkConfig) -> list[str]:
    """The windows as cut from the tokens of the whole text at once."""
    spans = words(text)
    if len(spans) <= config.size:
        return [text]
    windows = []
    for start in range(0, len(spans), config.stride):
        window = spans[start : start + config.size]
        windows.append(text[window[0][0] : window[-1][1]])
        if start + config.size >= len(spans):
            break
    return windows


def test_huge_texts_are_tokenised_block_by_block_with_the_same_windows() -> None:
    pieces = [f"w{i}" + ("  \n" if i % 7 == 0 else " ") for i in range(3000)]
    text = "".join(pieces) + "x" * 5000 + " tail words"  # one word longer than a block
    seen: list[int] = []

    def recorded(part: str) -> list[tuple[int, int]]:
        seen.append(len(part))
        return words(part)

    config = ChunkConfig(size=50, overlap=10)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunking, "BLOCK_CHARS", 1000)
        windows = list(chunk_text(text, recorded, config))
    assert windows == reference_windows(text, config)
    assert list(block_spans(text, words, 1000)) == words(text)
    assert max(seen) <= 5000 + 1000  # a block, or the long word: never the whole text
    assert len(seen) > 10


def test_structured_documents_are_cut_at_their_headings_first() -> None:
    from densekit.corpus import Document
    from densekit.corpus.chunking import document_passages
    from densekit.corpus.markup import read_markdown

    note = "# Guide\n\nIntro a b.\n\n## Install\n\nc d e f g h\n\n## Use\n\ni j\n"
    read = read_markdown(note, "guide.md")
    document = Document("guide.md", read.text, read.title, {"_sections": read.sections})
    passages = document_passages(document, words, ChunkConfig(size=5))
    assert [text for _, text in passages] == [
        "Guide Intro a b.",
        "Install\n\nc d e f",  # a window never runs on into the next section
        "g h",
        "Use\n\ni j",
    ]
    assert [pid for pid, _ in passages] == [f"guide.md#{n}" for n in range(4)]
    # A structured document that fits in one window stays whole.
    assert document_passages(document, words, ChunkConfig(size=50)) == [
        ("guide.md#0", document.content)
    ]
    # Section starts that do not fit the text are ignored, not trusted.
    odd = Document("x", "a b c d e f", metadata={"_sections": [0, 99, "3"]})
    assert [t for _, t in document_passages(odd, words, ChunkConfig(size=4))] == [
        "a b c d",
        "e f",
    ]
