"""Cutting a long text to what the model reads before tokenising it: the same tokens, the same
vector, a bounded amount of text tokenised."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from densekit.encode import load_encoder
from densekit.encode.truncation import CHARS_PER_TOKEN, MARGIN, readable_prefix, readable_texts


def words(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def whole_word_pieces(text: str) -> list[tuple[int, int]]:
    """A tokenizer that segments each word as a whole (as Unigram may): its pieces depend on
    the word's length, so a word cut short reads differently from its start on."""
    spans = []
    for first, last in words(text):
        step = 2 + (last - first) % 3
        spans += [(i, min(i + step, last)) for i in range(first, last, step)]
    return spans


def test_short_texts_are_left_whole() -> None:
    text = "a short text"
    assert readable_prefix(text, words, 8) is text


@pytest.mark.parametrize(
    "text",
    [
        " ".join(f"w{i}" for i in range(200_000)),
        ("word" + " " * 300) * 2_000,  # few tokens per character: the cut must grow
        "x" * 20_000 + " tail" * 1_000,  # a long word across the first cut
    ],
)
@pytest.mark.parametrize("spans_of", [words, whole_word_pieces])
def test_the_cut_keeps_the_tokens_the_model_reads(text: str, spans_of) -> None:
    tokens = 64
    prefix = readable_prefix(text, spans_of, tokens)
    assert text.startswith(prefix)
    assert spans_of(prefix)[:tokens] == spans_of(text)[:tokens]


def test_only_a_bounded_cut_is_tokenised() -> None:
    seen: list[int] = []

    def recorded(part: str) -> list[tuple[int, int]]:
        seen.append(len(part))
        return words(part)

    text = " ".join(f"w{i}" for i in range(1_000_000))  # 6.9 MB
    prefix = readable_prefix(text, recorded, 256)
    assert len(prefix) <= MARGIN * 256 * CHARS_PER_TOKEN
    assert seen == [len(prefix)]
    assert len(words(prefix)) >= MARGIN * 256


@pytest.mark.slow
def test_a_huge_document_gets_the_vector_of_its_truncated_text() -> None:
    minilm = load_encoder("minilm")
    rng = random.Random(0)
    vocabulary = [
        "dense",
        "retrieval",
        "of",
        "long",
        "documents",
        "Zürich",
        "naïve",
        "日本語",
        "e-mail",
        "3.14",
        "the",
        "of",
    ]
    text = " ".join(rng.choice(vocabulary) for _ in range(60_000))
    [prefix] = readable_texts(minilm, [text])
    assert len(prefix) < len(text) // 20
    np.testing.assert_allclose(
        minilm.encode_documents([prefix]), minilm.encode_documents([text]), atol=1e-6
    )
