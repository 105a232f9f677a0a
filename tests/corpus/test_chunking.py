from __future__ import annotations

import re

import pytest

from densekit.corpus import ChunkConfig, chunk_text
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
