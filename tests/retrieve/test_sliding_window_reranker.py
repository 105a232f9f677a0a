"""Sliding-window listwise reranking (RankGPT): windows from the bottom up, permutations read
as RankGPT reads them, and the bundled SmolLM2 run as a user runs it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from required import require

from densekit.errors import InputError
from densekit.retrieve.listwise import ListwiseReranker, read_permutation, window_starts
from densekit.retrieve.pipeline import CandidateStage, Pipeline, RerankStage


def test_windows_slide_from_the_bottom_to_the_top() -> None:
    assert window_starts(50, 20, 10) == [30, 20, 10, 0]
    assert window_starts(25, 20, 10) == [5, 0]
    assert window_starts(20, 20, 10) == [0]
    assert window_starts(3, 20, 10) == [0]
    assert window_starts(0, 20, 10) == []


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("[2] > [3] > [1]", [1, 2, 0]),
        ("[3] > [3] > [9] > [0]", [2, 0, 1]),  # repeats and out-of-range numbers dropped
        ("I cannot rank these.", [0, 1, 2]),  # nothing named: the incoming order
        ("[2]", [1, 0, 2]),
    ],
)
def test_a_written_permutation_is_read_as_rankgpt_reads_it(written: str, expected: list) -> None:
    assert read_permutation(written, 3) == expected


class LengthRanker(ListwiseReranker):
    """The sliding window around a stand-in model that ranks shorter passages first."""

    def __init__(self, window: int, step: int) -> None:
        import threading

        self.window, self.step, self.name = window, step, "by-length"
        self.windows: list[int] = []
        self._lock = threading.Lock()

    def rank_window(self, query: str, texts: Sequence[str]) -> list[int]:
        self.windows.append(len(texts))
        return sorted(range(len(texts)), key=lambda i: len(texts[i]))


def test_the_shortest_passage_climbs_from_the_last_window_to_the_top() -> None:
    texts = ["x" * (30 - i) for i in range(25)]  # the shortest comes last
    ranker = LengthRanker(window=8, step=4)
    scores = ranker.score_lists(["q"], [texts])[0]
    order = np.argsort(-scores, kind="stable")
    assert order[0] == 24 and sorted(order.tolist()) == list(range(25))
    assert ranker.windows == [8] * 6  # starts 17, 13, 9, 5, 1, 0


def test_window_settings_are_checked() -> None:
    with pytest.raises(InputError, match="step in \\[1, window\\]"):
        ListwiseReranker("smollm2", window=10, step=20)


@pytest.mark.usefixtures("bundled_smollm2")
@pytest.mark.slow
def test_the_bundled_smollm2_ranks_windows_in_a_pipeline(hashing_collection) -> None:
    require("gguf")
    ranker = ListwiseReranker("smollm2", window=4, step=2)
    prompt = ranker.prompt("loyal dogs", ["Dogs are loyal.", "Fish swim."])
    assert "[1] Dogs are loyal." in prompt and "[2] Fish swim." in prompt
    assert "<|im_start|>assistant" in prompt  # the model's own chat template
    scores = ranker.score_lists(["loyal dogs"], [["Dogs are loyal.", "Fish swim.", "Cats."]])[0]
    assert sorted(scores.tolist()) == [1.0, 2.0, 3.0]
    stage = RerankStage("smollm2", kind="listwise", top_n=5, window=4, step=2)
    pipeline = Pipeline((CandidateStage("dense", 5),), rerank=(stage,))
    hits = hashing_collection.search("why are dogs loyal?", 5, pipeline=pipeline)
    assert len(hits) == 5 and len({hit.id for hit in hits}) == 5


def test_passages_are_cut_to_their_first_tokens() -> None:
    from transformers import AutoTokenizer

    from densekit.encode.registry import resolve_model
    from densekit.retrieve.listwise import first_tokens

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm").location)
    text = "Vitamin D deficiency raises the risk of fractures in older adults. " * 40
    cut = first_tokens(tokenizer, text, 7)
    assert len(tokenizer(cut, add_special_tokens=False)["input_ids"]) == 7
    assert text.startswith(cut) and first_tokens(tokenizer, "Short.", 7) == "Short."
