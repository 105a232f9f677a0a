"""Micro-batching of shard searches: concurrent requests' queries go to the shards together.

A shard answers 64 queries in little more time than one (one FAISS or bm25s call, one Ray round
trip per shard instead of 64), so a server on a sharded collection gathers the queries of
concurrent requests, as it does for its model (:mod:`densekit.serve.batching`), and asks every
shard once for all of them. :class:`BatchingShards` wraps the collection's
:class:`~densekit.retrieve.scatter_gather.ShardExecutor`: queries asked with the same settings
(method, k, index parameters, partial answers allowed or not) are searched in one call; each
caller gets its own queries' answers: the hits it would have got alone, scores to float
rounding (a batch's matrix product rounds differently from one query's). Other calls
(reference vectors) go straight through.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from densekit.retrieve.scatter_gather import (
    ShardExecutor,
    ShardUnavailableError,
    partial_report,
    partial_results,
    shards_of,
    use_shards,
)
from densekit.serve.batching import BatchObserver, MicroBatcher
from densekit.store.sharded import ShardedStore


def _rows_of_sparse(matrix: Any) -> list[Any]:
    return [matrix[row] for row in range(matrix.shape[0])]


def _stack_sparse(rows: Sequence[Any]) -> Any:
    from scipy.sparse import vstack

    return vstack(list(rows), format="csr")


@dataclass(frozen=True)
class _Method:
    """How one ShardSearch method's query batch splits into queries and stacks back."""

    split: Callable[[Any], list[Any]]
    stack: Callable[[Sequence[Any]], Any]
    # One shard's answer for the whole batch -> its answer for query ``number``, and back.
    take: Callable[[Any, int], Any]
    regroup: Callable[[list[Any]], Any]


def _take_found(answer: Any, number: int) -> Any:
    return answer[number]


def _take_lexical(answer: Any, number: int) -> Any:
    found, frequencies, documents = answer
    return found[number], frequencies[number], documents


def _regroup_lexical(answers: list[Any]) -> Any:
    return [a[0] for a in answers], [a[1] for a in answers], answers[0][2]


_METHODS = {
    "dense": _Method(list, np.stack, _take_found, list),
    "lexical": _Method(list, list, _take_lexical, _regroup_lexical),
    "sparse": _Method(_rows_of_sparse, _stack_sparse, _take_found, list),
    "multivector": _Method(list, list, _take_found, list),  # a matrix of token vectors each
}


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a search setting (index parameters come as a dict)."""
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    return value


@dataclass(frozen=True)
class _Query:
    """One query of one caller's ask, with the settings it must be searched with."""

    method: str
    query: Any
    settings: tuple[Any, ...]
    partial: bool

    @property
    def group(self) -> tuple[Any, ...]:
        return (self.method, self.partial, *map(_frozen, self.settings))


# Per query: every shard's answer for it (None: the shard did not answer).
_Answered = list[Any]


class BatchingShards:
    """A :class:`~densekit.retrieve.scatter_gather.ShardExecutor` that gathers concurrent
    searches (up to ``max_batch`` queries, for up to ``max_wait_ms``) into one ask of
    ``shards``."""

    def __init__(
        self,
        shards: ShardExecutor,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 5.0,
        observe: BatchObserver | None = None,
        name: str = "shards",
    ) -> None:
        self.inner = shards
        self._batcher: MicroBatcher[_Query] = MicroBatcher(
            self._search,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            observe=observe,
            name=name,
            join=lambda pieces: list(chain.from_iterable(pieces)),
            # A shard that fails fails every query asked of it, whoever sent it: asking again
            # per caller would only wait for the same shard once per caller.
            isolate_failures=False,
        )

    def ask(self, method: str, *args: Any) -> list[Any]:
        described = _METHODS.get(method)
        split = described.split(args[0]) if described is not None else []
        if described is None or not split:
            return self.inner.ask(method, *args)
        report = partial_report()
        queries = [_Query(method, query, args[1:], report is not None) for query in split]
        answered: list[_Answered | BaseException] = self._batcher.submit(queries)
        for answer in answered:
            if isinstance(answer, BaseException):  # this caller's group failed
                # A copy: the same error may be raised in several callers' threads at once.
                raise copy.copy(answer) from answer
        shards = len(answered[0])
        # A shard that missed any piece of this caller's queries is missing for all of them.
        missing = {n for n in range(shards) if any(q[n] is None for q in answered)}
        if len(missing) == shards:  # pieces asked apart may each have lost other shards
            raise ShardUnavailableError(
                "no shard answered every part of this search; they are restarted from their "
                "files: try again in a moment"
            )
        if report is not None:
            report.shards = shards
            report.missing |= missing
        return [
            None if number in missing else described.regroup([q[number] for q in answered])
            for number in range(shards)
        ]

    def ask_each(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return self.inner.ask_each(method, args)

    def _search(self, queries: Sequence[_Query]) -> list[_Answered | BaseException]:
        """Every query's answers (or its group's error), one ask of the shards per group of
        like queries."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for position, query in enumerate(queries):
            key = query.group
            try:
                hash(key)
            except TypeError:  # settings that cannot be compared: searched on their own
                key = ("alone", position)
            groups.setdefault(key, []).append(position)
        answered: list[_Answered | BaseException] = [[] for _ in queries]
        for positions in groups.values():
            try:
                self._search_group([queries[p] for p in positions], positions, answered)
            except Exception as error:  # raised to this group's callers only
                for position in positions:
                    answered[position] = error
        return answered

    def _search_group(
        self,
        group: list[_Query],
        positions: list[int],
        answered: list[_Answered | BaseException],
    ) -> None:
        first = group[0]
        described = _METHODS[first.method]
        batch = described.stack([query.query for query in group])
        with partial_results(allowed=first.partial):
            answers = self.inner.ask(first.method, batch, *first.settings)
        for number, position in enumerate(positions):
            answered[position] = [
                None if answer is None else described.take(answer, number) for answer in answers
            ]

    def close(self) -> None:
        self._batcher.close()


@dataclass(frozen=True)
class ShardBatching:
    """How a server batches the shard searches of each sharded collection it serves:
    ``max_batch`` queries per ask at most (1: every request asks alone), gathered for at
    most ``max_wait_ms``; ``observe(collection, queries)`` sees each ask's size."""

    max_batch: int = 64
    max_wait_ms: float = 5.0
    observe: Callable[[str, int], None] | None = None

    def attach(self, store: ShardedStore, name: str) -> None:
        """Search ``store``'s shards (with the executor attached to it, or in threads)
        through a :class:`BatchingShards` until it closes."""
        if self.max_batch <= 1:
            return
        observe = self.observe
        batching = BatchingShards(
            shards_of(store),
            max_batch=self.max_batch,
            max_wait_ms=self.max_wait_ms,
            observe=None if observe is None else lambda size: observe(name, size),
            name=f"shards-{name}",
        )
        use_shards(store, batching)
        store.on_close(batching.close)
