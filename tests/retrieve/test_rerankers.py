"""Rerankers read what their model reads of a passage, however long the stored text is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import transformers
from tiny_llms import WORDS, tiny_model

from densekit.encode import causal, resolve_model
from densekit.encode.causal import CausalLM
from densekit.retrieve import rerankers
from densekit.retrieve.rerankers import CrossEncoderReranker

QUERY = "what do salmon do in rivers?"
# About 1.5 MB of words: tokenising it whole takes seconds; the models read a few hundred.
HUGE = " ".join(WORDS[i % len(WORDS)] for i in range(250_000))


class LongestSeen:
    """Wraps a tokenizer and records the longest text it was given."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.longest = 0

    def __call__(self, text, *args, **kwargs):
        texts = text if isinstance(text, list) else [text]
        flat = [t for item in texts for t in (item if isinstance(item, list | tuple) else [item])]
        self.longest = max(self.longest, *(len(t) for t in flat))
        return self.tokenizer(text, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


@pytest.fixture
def whole_text(monkeypatch: pytest.MonkeyPatch):
    """Turns the cut off: the reference, a passage tokenised whole."""

    def off() -> None:
        monkeypatch.setattr(rerankers, "tokenizer_prefix", lambda tokenizer, text, tokens: text)
        monkeypatch.setattr(causal, "tokenizer_prefix", lambda tokenizer, text, tokens: text)

    return off


def test_a_cross_encoder_scores_a_huge_passage_from_its_readable_start(
    tmp_path: Path, whole_text
) -> None:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(resolve_model("minilm").location, num_labels=1, device="cpu")
    model.save_pretrained(str(tmp_path / "reranker"))
    reranker = CrossEncoderReranker(str(tmp_path / "reranker"), max_length=128)
    predict, read = reranker.model.predict, []

    def recording(pairs, **options):
        read.extend(len(passage) for _, passage in pairs)
        return predict(pairs, **options)

    reranker.model.predict = recording
    pairs = [(QUERY, HUGE), (QUERY, "Salmon swim upstream.")]
    cut = reranker.score(pairs)
    assert max(read) < 128 * 20
    whole_text()
    whole = reranker.score(pairs)
    assert max(read) == len(HUGE)
    np.testing.assert_array_equal(cut, whole)


def test_the_likelihood_scorer_reads_a_huge_passage_from_its_readable_start(
    tmp_path: Path, whole_text
) -> None:
    folder = tiny_model(tmp_path / "llama", "llama")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    seen = LongestSeen(tokenizer)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    lm = CausalLM("tiny", model, seen)
    pairs = [("the cat sat", HUGE), ("the dog ran", "a dog ran on the mat")]
    cut = lm.query_log_likelihood(pairs, passage_tokens=64)
    assert seen.longest < 64 * 20
    whole_text()
    whole = lm.query_log_likelihood(pairs, passage_tokens=64)
    assert seen.longest == len(HUGE)
    np.testing.assert_allclose(cut, whole, rtol=0, atol=1e-6)
