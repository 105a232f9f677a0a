"""Encode a stream of passages into committed shards: streaming, resumable, cache-aware.

Memory is bounded by one shard of texts and vectors, whatever the corpus size. A rerun over the
same directory keeps every committed shard whose texts are unchanged (by digest), re-encodes the
rest, and so produces the same shards as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from densekit.encode.base import Encoder
from densekit.encode.batching import encode_documents_sorted
from densekit.encode.cache import EmbeddingCache
from densekit.encode.truncation import readable_texts
from densekit.files.shards import (
    DEFAULT_ROWS_PER_SHARD,
    ShardMeta,
    commit_shard,
    read_committed,
    remove_shards_from,
    shard_name,
)
from densekit.interrupts import deferred_interrupt

Passage = tuple[str, str]
"""(passage id, text)"""


@dataclass
class EncodingReport:
    shards: int = 0
    passages: int = 0
    resumed_shards: int = 0
    resumed_passages: int = 0
    cached_passages: int = 0
    encoded_passages: int = 0
    truncated_passages: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def shard_digest(passages: list[Passage]) -> str:
    digest = hashlib.sha256()
    for passage_id, text in passages:
        # Piece by piece (same bytes, same digest): a huge text is not copied twice more.
        for part in (passage_id, text):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
    return digest.hexdigest()


def _groups(passages: Iterable[Passage], size: int) -> Iterator[list[Passage]]:
    iterator = iter(passages)
    while group := list(itertools.islice(iterator, size)):
        yield group


class EncodingRun:
    """Encode ``passages`` into ``directory``; see the module docstring for the guarantees."""

    def __init__(
        self,
        directory: Path,
        encoder: Encoder,
        *,
        rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
        dtype: str = "float32",
        cache: EmbeddingCache | None = None,
        progress: bool = True,
    ) -> None:
        self.directory = directory
        self.encoder = encoder
        self.rows_per_shard = rows_per_shard
        self.dtype = dtype
        self.cache = cache
        self.progress = progress
        self.report = EncodingReport()

    @property
    def shard_paths(self) -> list[Path]:
        return [self.directory / shard_name(i) for i in range(self.report.shards)]

    def run(self, passages: Iterable[Passage], expected: int | None = None) -> EncodingReport:
        started = time.perf_counter()
        bar = tqdm(total=expected, desc="encoding", unit="passage", disable=not self.progress)
        notice = "\nstopping after the shard in flight (Ctrl-C again to stop now)"
        with bar, deferred_interrupt(notice if self.progress else None) as interrupt:
            for index, group in enumerate(_groups(passages, self.rows_per_shard)):
                self._shard(index, group, bar)
                elapsed = max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(
                    shard=index + 1, tokens_per_s=f"{self.report.tokens / elapsed:,.0f}"
                )
                interrupt.check()
        remove_shards_from(self.directory, self.report.shards)
        self.report.seconds = round(time.perf_counter() - started, 3)
        return self.report

    def _shard(self, index: int, group: list[Passage], bar: tqdm) -> None:
        report = self.report
        digest = shard_digest(group)
        committed = read_committed(self.directory, index)
        report.shards += 1
        report.passages += len(group)
        if committed is not None and committed.digest == digest and committed.rows == len(group):
            report.resumed_shards += 1
            report.resumed_passages += len(group)
            bar.update(len(group))
            return
        if report.resumed_passages and report.resumed_shards == index:
            # Said even without progress bars: the user should know work was reused.
            tqdm.write(
                f"resuming at shard {index}, {report.resumed_passages} passages already encoded",
                file=sys.stderr,
            )
        texts = [text for _, text in group]
        vectors = self._vectors(texts, bar)
        meta = ShardMeta(rows=len(group), digest=digest, ids=[pid for pid, _ in group])
        commit_shard(self.directory, index, vectors, meta, self.dtype)

    def _vectors(self, texts: list[str], bar: tqdm) -> np.ndarray:
        vectors = np.empty((len(texts), self.encoder.dimension), dtype=np.float32)
        cached = self.cache.get_many(texts) if self.cache is not None else {}
        for position, vector in cached.items():
            vectors[position] = vector
        bar.update(len(cached))
        missing = [i for i in range(len(texts)) if i not in cached]
        self.report.cached_passages += len(cached)
        self.report.encoded_passages += len(missing)
        if missing:
            # Only what the model reads is tokenised: a huge passage costs its first tokens.
            todo = readable_texts(self.encoder, [texts[i] for i in missing])
            limit = self.encoder.max_tokens
            lengths = self.encoder.token_lengths(todo)
            self.report.truncated_passages += sum(length > limit for length in lengths)
            self.report.tokens += sum(min(length, limit) for length in lengths)
            fresh = encode_documents_sorted(
                self.encoder, todo, on_progress=bar.update, token_lengths=lengths
            )
            vectors[missing] = fresh
            if self.cache is not None:
                self.cache.put_many([texts[i] for i in missing], fresh)
        return vectors


def encode_passages(
    passages: Iterable[Passage],
    directory: Path,
    encoder: Encoder,
    *,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    dtype: str = "float32",
    cache_dir: Path | None = None,
    progress: bool = True,
    expected: int | None = None,
) -> tuple[EncodingReport, list[Path]]:
    """One :class:`EncodingRun` with the cache for ``encoder`` under ``cache_dir`` (if any)."""
    cache = None
    if cache_dir is not None:
        cache = EmbeddingCache(cache_dir, encoder.fingerprint, encoder.dimension)
    run = EncodingRun(
        directory,
        encoder,
        rows_per_shard=rows_per_shard,
        dtype=dtype,
        cache=cache,
        progress=progress,
    )
    try:
        report = run.run(passages, expected)
    finally:
        if cache is not None:
            cache.close()
    return report, run.shard_paths
