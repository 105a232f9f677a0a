"""Encode a stream of passages into committed shards: streaming, resumable, cache-aware.

Memory is bounded by one shard of texts and vectors, whatever the corpus size. A rerun over the
same directory keeps every committed shard whose texts are unchanged (by digest), re-encodes the
rest, and so produces the same shards as an uninterrupted run.

The shards are encoded here, or by a :class:`PartitionEncoder` (a pool of workers on a cluster,
:mod:`densekit.distributed.encoding`) several at a time; either way this process reads the
passages, looks them up in the cache and commits each shard, so resuming, caching and the files
written are the same.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from densekit.encode.base import Encoder
from densekit.encode.batching import encode_documents_sorted
from densekit.encode.cache import EmbeddingCache, cache_name
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


@dataclass
class EncodedTexts:
    """What encoding a list of texts gave: one vector per text, and what the model read."""

    vectors: np.ndarray
    tokens: int = 0  # tokens the model read (after truncation)
    truncated: int = 0  # texts longer than the model reads


def encode_texts(
    encoder: Encoder, texts: list[str], on_progress: Callable[[int, int], object] | None = None
) -> EncodedTexts:
    """Encode ``texts`` as documents, longest-first in token-budget batches;
    ``on_progress(texts, tokens)`` as slices of them are done."""
    # Only what the model reads is tokenised: a huge passage costs its first tokens.
    todo = readable_texts(encoder, texts)
    limit = encoder.max_tokens
    lengths = encoder.token_lengths(todo)
    vectors = encode_documents_sorted(encoder, todo, on_progress=on_progress, token_lengths=lengths)
    return EncodedTexts(
        vectors=vectors,
        tokens=sum(min(length, limit) for length in lengths),
        truncated=sum(length > limit for length in lengths),
    )


class PartitionEncoder(Protocol):
    """Encodes partitions (lists of texts) elsewhere, up to ``capacity`` at a time."""

    fingerprint: str  # must equal the run's encoder's: the same model and settings
    capacity: int

    def submit(self, key: int, texts: list[str]) -> None: ...

    def finished(self, wait: bool) -> list[tuple[int, EncodedTexts]]:
        """Partitions done since the last call; with ``wait``, at least one (if any pending)."""
        ...

    def cancel(self) -> None:
        """Drop the partitions in flight (after Ctrl-C)."""
        ...


@dataclass
class _Partition:
    """A shard being encoded: its passages, and its vectors so far (the cached ones)."""

    index: int
    group: list[Passage]
    digest: str
    vectors: np.ndarray
    missing: list[int] = field(default_factory=list)


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
        remote: PartitionEncoder | None = None,
    ) -> None:
        if remote is not None and remote.fingerprint != encoder.fingerprint:
            raise ValueError("the partition encoder runs another model than the encoding run's")
        self.directory = directory
        self.encoder = encoder
        self.rows_per_shard = rows_per_shard
        self.dtype = dtype
        self.cache = cache
        self.progress = progress
        self.remote = remote
        self.report = EncodingReport()
        self._in_flight: dict[int, _Partition] = {}
        self._started = time.perf_counter()
        self._tokens_seen = 0  # read by the model so far, shards not yet finished included

    @property
    def shard_paths(self) -> list[Path]:
        return [self.directory / shard_name(i) for i in range(self.report.shards)]

    def run(self, passages: Iterable[Passage], expected: int | None = None) -> EncodingReport:
        started = self._started = time.perf_counter()
        bar = tqdm(total=expected, desc="encoding", unit="passage", disable=not self.progress)
        notice = "\nstopping after the shard in flight (Ctrl-C again to stop now)"
        if self.remote is not None:
            notice = "\nstopping: shards finished so far are kept (Ctrl-C again to stop now)"
        with bar, deferred_interrupt(notice if self.progress else None) as interrupt:
            try:
                for index, group in enumerate(_groups(passages, self.rows_per_shard)):
                    self._shard(index, group, bar)
                    self._show(bar)
                    interrupt.check()
                while self._in_flight:
                    self._collect(bar, wait=True)
                    self._show(bar)
                    interrupt.check()
            except BaseException:
                if self.remote is not None and self._in_flight:
                    self.remote.cancel()
                raise
        remove_shards_from(self.directory, self.report.shards)
        self.report.seconds = round(time.perf_counter() - started, 3)
        return self.report

    def _show(self, bar: tqdm) -> None:
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        done = self.report.shards - len(self._in_flight)
        bar.set_postfix(shards=done, tokens_per_s=f"{self._tokens_seen / elapsed:,.0f}")

    def _advance(self, bar: tqdm, passages: int, tokens: int) -> None:
        self._tokens_seen += tokens
        bar.update(passages)
        self._show(bar)

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
        partition = self._with_cached(index, group, digest, bar)
        if not partition.missing:
            self._commit(partition)
        elif self.remote is None:
            texts = [group[i][1] for i in partition.missing]
            advance = functools.partial(self._advance, bar)
            self._finish(partition, encode_texts(self.encoder, texts, on_progress=advance))
        else:
            while len(self._in_flight) >= self.remote.capacity:
                self._collect(bar, wait=True)
            self._in_flight[index] = partition
            self.remote.submit(index, [group[i][1] for i in partition.missing])
            self._collect(bar, wait=False)

    def _with_cached(self, index: int, group: list[Passage], digest: str, bar: tqdm) -> _Partition:
        vectors = np.empty((len(group), self.encoder.dimension), dtype=np.float32)
        cached = self.cache.get_many([text for _, text in group]) if self.cache else {}
        for position, vector in cached.items():
            vectors[position] = vector
        bar.update(len(cached))
        self.report.cached_passages += len(cached)
        missing = [i for i in range(len(group)) if i not in cached]
        return _Partition(index, group, digest, vectors, missing)

    def _collect(self, bar: tqdm, wait: bool) -> None:
        assert self.remote is not None
        for index, encoded in self.remote.finished(wait):
            partition = self._in_flight.pop(index)
            self._advance(bar, len(partition.missing), encoded.tokens)
            self._finish(partition, encoded)

    def _finish(self, partition: _Partition, encoded: EncodedTexts) -> None:
        self.report.encoded_passages += len(partition.missing)
        self.report.tokens += encoded.tokens
        self.report.truncated_passages += encoded.truncated
        partition.vectors[partition.missing] = encoded.vectors
        if self.cache is not None:
            texts = [partition.group[i][1] for i in partition.missing]
            self.cache.put_many(texts, encoded.vectors)
        self._commit(partition)

    def _commit(self, partition: _Partition) -> None:
        group = partition.group
        meta = ShardMeta(rows=len(group), digest=partition.digest, ids=[pid for pid, _ in group])
        commit_shard(self.directory, partition.index, partition.vectors, meta, self.dtype)


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
    remote: PartitionEncoder | None = None,
) -> tuple[EncodingReport, list[Path]]:
    """One :class:`EncodingRun` with the cache for ``encoder`` under ``cache_dir`` (if any),
    encoding here or with ``remote``."""
    cache = None
    if cache_dir is not None:
        cache = EmbeddingCache(cache_dir, cache_name(encoder), encoder.dimension)
    run = EncodingRun(
        directory,
        encoder,
        rows_per_shard=rows_per_shard,
        dtype=dtype,
        cache=cache,
        progress=progress,
        remote=remote,
    )
    try:
        report = run.run(passages, expected)
    finally:
        if cache is not None:
            cache.close()
    return report, run.shard_paths
