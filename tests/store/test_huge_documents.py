"""A huge document costs what the model reads of it: the encoder sees a bounded cut, the
collection keeps the whole text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from conftest import write_jsonl
from helpers import HashingEncoder

from densekit.corpus import read_corpus
from densekit.encode.truncation import CHARS_PER_TOKEN, MARGIN
from densekit.retrieve import build_collection
from densekit.store import BuildOptions, update_collection


class RecordingEncoder(HashingEncoder):
    """Reads its first 64 words, and remembers the longest text it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.longest = 0

    @property
    def max_tokens(self) -> int:
        return 64

    def _seen(self, texts: Sequence[str]) -> None:
        self.longest = max([self.longest, *(len(text) for text in texts)])

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        self._seen(texts)
        return super().token_lengths(texts)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        self._seen([text])
        return super().token_spans(text)

    def encode_documents(self, texts: Sequence[str], **options) -> np.ndarray:
        self._seen(texts)
        return super().encode_documents([" ".join(text.split()[:64]) for text in texts])


def test_huge_documents_are_encoded_from_a_bounded_cut(tmp_path: Path) -> None:
    huge = " ".join(f"w{i}" for i in range(300_000))  # 2 MB on one line
    corpus = write_jsonl(
        tmp_path / "corpus.jsonl", [{"_id": "huge", "text": huge}, {"_id": "small", "text": "hi"}]
    )
    encoder = RecordingEncoder()
    options = BuildOptions(progress=False, cache_dir=None, retriever="dense")
    with build_collection(corpus, tmp_path / "c", options, encoder=encoder) as collection:
        assert encoder.longest <= MARGIN * 64 * CHARS_PER_TOKEN
        assert collection.manifest.stats["encoding"]["truncated_passages"] == 1
        (stored,) = collection.documents.get_rows([collection.documents.rows_of(["huge"])["huge"]])
        assert stored.text == huge
        vectors, _ = collection.dense_vectors()
        row = collection.row_ids.index("huge")
        assert np.allclose(vectors.take(np.array([row])), encoder.encode_documents([huge]))

    encoder.longest = 0
    more = write_jsonl(tmp_path / "more.jsonl", [{"_id": "huge2", "text": huge}])
    update_collection(tmp_path / "c", add=list(read_corpus(more)), encoder=encoder, cache=False)
    assert 0 < encoder.longest <= MARGIN * 64 * CHARS_PER_TOKEN
