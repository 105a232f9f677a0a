"""The part of a long text a model reads, cut before tokenising.

An encoder reads its first ``max_tokens`` tokens and drops the rest, but a tokenizer given a
whole 50 MB document tokenises all of it first (minutes, gigabytes of offsets). Cutting the text
to a budget of characters that surely holds more tokens than the model reads gives the same
tokens, so the same vector, at the cost of a few kilobytes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from densekit.corpus.chunking import TokenSpans, last_space
from densekit.encode.base import Encoder

# Characters per token a first cut allows: English averages 4 to 5, and a cut that turns out to
# hold too few tokens (long words, runs of spaces) grows until it holds enough.
CHARS_PER_TOKEN = 8
# The cut keeps this many times the tokens the model reads, so the partial word at the cut is
# far past the last token read (tokenizers decide a word's tokens from the word alone).
MARGIN = 2


def readable_prefix(text: str, spans_of: TokenSpans, tokens: int) -> str:
    """A prefix of ``text`` whose first ``tokens`` tokens are those of ``text`` (by
    ``spans_of``, the encoder's own tokenizer): ``text`` itself when it is short, otherwise a
    prefix holding at least ``MARGIN`` times ``tokens`` tokens."""
    needed = MARGIN * tokens
    budget = needed * CHARS_PER_TOKEN
    while budget < len(text):
        cut = last_space(text, budget // 2, budget)
        if cut is not None:
            # Every tokenizer splits words at whitespace, so a cut there changes no token
            # before it.
            prefix = text[:cut]
            if len(spans_of(prefix)) >= needed:
                return prefix
        else:
            # One long word across the cut. Tokenizers that segment a word as a whole
            # (Unigram) may read its start differently once it is cut, so this cut is taken
            # only when a cut twice as far gives the same first tokens.
            prefix = text[:budget]
            spans = list(spans_of(prefix))
            if (
                len(spans) >= needed
                and spans[:tokens] == list(spans_of(text[: 2 * budget]))[:tokens]
            ):
                return prefix
        budget *= 4
    return text


def tokenizer_spans(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """The token spans of ``text`` by a Hugging Face fast tokenizer, special tokens left out."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return [(int(first), int(last)) for first, last in encoded["offset_mapping"]]


def tokenizer_prefix(tokenizer: Any, text: str, tokens: int) -> str:
    """What a model with a Hugging Face fast ``tokenizer`` reads of ``text`` when it reads
    ``tokens`` tokens (see :func:`readable_prefix`)."""
    return readable_prefix(text, functools.partial(tokenizer_spans, tokenizer), tokens)


def readable_texts(encoder: Encoder, texts: Sequence[str]) -> list[str]:
    """What ``encoder`` reads of each text (see :func:`readable_prefix`)."""
    return [readable_prefix(text, encoder.token_spans, encoder.max_tokens) for text in texts]
