"""Sliding-window listwise reranking with an instruction LLM (RankGPT; Sun et al., "Is ChatGPT
Good at Search?", EMNLP 2023).

The model sees ``window`` numbered passages and the query, and writes their order as
``[3] > [1] > [2] ...``. The window slides from the bottom of the list to the top by ``step``,
so a relevant passage can climb from the last window to the first. Output that is not a clean
permutation is read as RankGPT reads it: numbers in the order first written, repeats and
numbers out of range dropped, passages never named kept below in their incoming order.
Generation stops once every passage is named, or once the answer leaves the format (a letter
where only identifiers belong): what follows is not a ranking, and a small model can ramble for
hundreds of tokens.

Unlike pointwise rerankers and MVP, the result depends on the order the candidates come in
(the model reads positions and identifiers): the order-sensitivity benchmark measures how much.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from densekit.encode.truncation import tokenizer_prefix, tokenizer_spans
from densekit.errors import InputError

INSTRUCTION = (
    "I will provide you with {n} passages, each indicated by a numerical identifier []. "
    "Rank the passages based on their relevance to the search query: {query}."
)
REQUEST = (
    "Search Query: {query}.\nRank the {n} passages above based on their relevance to the "
    "search query. All the passages should be included and listed using identifiers, in "
    "descending order of relevance. The output format should be [] > [], e.g., [2] > [1]. "
    "Only respond with the ranking results, do not say any word or explain."
)
_IDENTIFIER = re.compile(r"\d+")
_OFF_FORMAT = re.compile(r"[A-Za-z]")


class ListwiseReranker:
    """RankGPT over a causal LM with a chat template (the bundled ``smollm2`` by default)."""

    def __init__(
        self,
        model: str,
        *,
        window: int = 20,
        step: int = 10,
        max_length: int | None = None,
    ) -> None:
        from densekit.encode.causal import CausalLM

        if not 1 <= step <= window or window < 2:
            raise InputError(f"window must be >= 2 and step in [1, window], got {window}, {step}")
        self.name = model
        self.window = window
        self.step = step
        self.passage_tokens = max_length or 100
        self.lm = CausalLM.load(model)
        self._lock = threading.Lock()

    def score_lists(
        self, queries: Sequence[str], passages: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """Scores that order each list as the model ranked it (higher first)."""
        with self._lock:
            return [
                self._score(query, list(texts))
                for query, texts in zip(queries, passages, strict=True)
            ]

    def _score(self, query: str, texts: list[str]) -> np.ndarray:
        order = list(range(len(texts)))
        if len(texts) < 2:
            return np.ones(len(texts), dtype=np.float32)
        for start in window_starts(len(texts), self.window, self.step):
            shown = order[start : start + self.window]
            ranked = self.rank_window(query, [texts[i] for i in shown])
            order[start : start + len(shown)] = [shown[i] for i in ranked]
        scores = np.empty(len(texts), dtype=np.float32)
        scores[order] = np.arange(len(texts), 0, -1, dtype=np.float32)
        return scores

    def rank_window(self, query: str, texts: Sequence[str]) -> list[int]:
        """The model's order of ``texts`` (indices into it)."""
        import torch
        from transformers import StoppingCriteriaList

        tokenizer = self.lm.tokenizer
        prompt = self.prompt(query, texts)
        # The answer is begun with "[" so a small model starts with an identifier.
        features = tokenizer(prompt + "[", add_special_tokens=False, return_tensors="pt")
        start = features["input_ids"].shape[1]

        def written(ids: Any) -> str:
            return "[" + tokenizer.decode(ids[start:], skip_special_tokens=True)

        def finished(input_ids: Any, scores: Any, **_: Any) -> bool:
            text = written(input_ids[0])
            return bool(_OFF_FORMAT.search(text)) or len(_named(text, len(texts))) == len(texts)

        with torch.inference_mode():
            output = self.lm.model.generate(
                **features,
                # "[12] > " is 4-7 tokens; the stop criterion ends it sooner.
                max_new_tokens=8 * len(texts) + 8,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                stopping_criteria=StoppingCriteriaList([_Stop(finished)]),
            )
        return read_permutation(_OFF_FORMAT.split(written(output[0]))[0], len(texts))

    def prompt(self, query: str, texts: Sequence[str]) -> str:
        tokenizer = self.lm.tokenizer
        numbered = "\n".join(
            f"[{i}] {first_tokens(tokenizer, ' '.join(text.split()), self.passage_tokens)}"
            for i, text in enumerate(texts, 1)
        )
        content = "\n\n".join(
            [
                INSTRUCTION.format(n=len(texts), query=query),
                numbered,
                REQUEST.format(n=len(texts), query=query),
            ]
        )
        messages = [{"role": "user", "content": content}]
        if tokenizer.chat_template:
            return tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        return content + "\n\n"


def window_starts(count: int, window: int, step: int) -> list[int]:
    """Where each window begins, from the bottom of the list to the top; the top window is
    always one (RankGPT's loop skips it when the list is not a whole number of steps)."""
    if count <= window:
        return [0] if count else []
    starts = list(range(count - window, 0, -step))
    return [*starts, 0]


def read_permutation(written: str, count: int) -> list[int]:
    """Indices 0..count-1 in the order ``written`` names them (1-based), then the rest."""
    seen = _named(written, count)
    return seen + [i for i in range(count) if i not in seen]


def _named(written: str, count: int) -> list[int]:
    seen: list[int] = []
    for match in _IDENTIFIER.findall(written):
        index = int(match) - 1
        if 0 <= index < count and index not in seen:
            seen.append(index)
    return seen


def first_tokens(tokenizer: Any, text: str, tokens: int) -> str:
    """``text`` cut after its first ``tokens`` tokens (whole, if it has no more)."""
    prefix = tokenizer_prefix(tokenizer, text, tokens)
    spans = tokenizer_spans(tokenizer, prefix)
    return prefix if len(spans) <= tokens else prefix[: spans[tokens - 1][1]]


class _Stop:
    """A transformers stopping criterion from a function of the ids so far (batch of one)."""

    def __init__(self, finished: Callable[..., bool]) -> None:
        self.finished = finished

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = self.finished(input_ids, scores)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)
