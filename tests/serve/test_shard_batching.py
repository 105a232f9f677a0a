"""Micro-batching of shard searches: concurrent searches share one ask of the shards, and each
gets what it would have got alone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest
from helpers import FUSED_REL, assert_same_ranking
from scipy.sparse import csr_matrix
from serving import build_hashing_collection, hashing_state

from densekit.retrieve import open_collection
from densekit.retrieve.scatter_gather import (
    ShardUnavailableError,
    partial_report,
    partial_results,
    shards_of,
    use_shards,
)
from densekit.serve.models import BatchSettings
from densekit.serve.shard_batching import BatchingShards

WAIT_MS = 300.0  # long enough that every thread's query joins the first ask


class CountingShards:
    """An executor around another that records each ask's method and number of queries."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.asks: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def ask(self, method: str, *args: Any) -> list[Any]:
        with self._lock:
            self.asks.append((method, len(args[0]) if method != "sparse" else args[0].shape[0]))
        return self.inner.ask(method, *args)

    def ask_each(self, method: str, args: Any) -> list[Any]:
        return self.inner.ask_each(method, args)

    def sizes(self, method: str) -> list[int]:
        return [size for asked, size in self.asks if asked == method]


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads released together; their results in order."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_concurrent_searches_share_asks_and_rank_as_the_unsharded_collection(
    sharded_scifact, retriever: str
) -> None:
    whole, sharded, queries = sharded_scifact
    with open_collection(sharded.stored.directory) as collection:
        counting = CountingShards(shards_of(collection.stored))
        batching = BatchingShards(counting, max_batch=64, max_wait_ms=WAIT_MS)
        use_shards(collection.stored, batching)
        searcher = collection.searcher(retriever)
        asked = [queries[2 * n : 2 * n + 2] for n in range(8)]  # 8 callers, 2 queries each
        found = at_once([lambda texts=texts: searcher.search(texts, 10) for texts in asked])
        batching.close()
    expected = whole.searcher(retriever).search(queries[:16], 10)
    rel = FUSED_REL if retriever == "hybrid" else 1e-6
    for mine, theirs in zip([hits for lists in found for hits in lists], expected, strict=True):
        pairs = [(h.id, h.score) for h in mine], [(h.id, h.score) for h in theirs]
        assert_same_ranking(*pairs, rel=rel)
    for method in {"dense": ["dense"], "bm25": ["lexical"], "hybrid": ["dense", "lexical"]}[
        retriever
    ]:
        sizes = counting.sizes(method)
        assert sum(sizes) == 16 and len(sizes) < 8, counting.asks


class FakeShards:
    """Two shards answering sparse searches by each query row's sum; shard 1 can be down."""

    def __init__(self) -> None:
        self.down = False

    def ask(self, method: str, matrix: csr_matrix, k: int) -> list[Any]:
        answers = []
        for shard in range(2):
            if shard == 1 and self.down:
                report = partial_report()
                if report is None:
                    raise ShardUnavailableError("shard 1 stopped")
                report.shards, answers = 2, [*answers, None]
                report.missing.add(1)
                continue
            sums = np.asarray(matrix.sum(axis=1)).ravel() + shard
            answers.append([(np.array([shard] * k), np.array([s] * k)) for s in sums])
        return answers

    def ask_each(self, method: str, args: Any) -> list[Any]:
        raise AssertionError("not batched, not asked here")


def sparse_queries(count: int, offset: int) -> csr_matrix:
    return csr_matrix(np.arange(count * 4, dtype=np.float32).reshape(count, 4) + offset)


def test_sparse_queries_split_and_stack_back_per_caller() -> None:
    fake = FakeShards()
    batching = BatchingShards(CountingShards(fake), max_batch=64, max_wait_ms=WAIT_MS)
    asked = [sparse_queries(n + 1, 100 * n) for n in range(4)]
    found = at_once([lambda m=m: batching.ask("sparse", m, 3) for m in asked])
    batching.close()
    for answers, matrix in zip(found, asked, strict=True):
        alone = fake.ask("sparse", matrix, 3)
        for shard, expected in zip(answers, alone, strict=True):
            assert [s.tolist() for _, s in shard] == [s.tolist() for _, s in expected]
    assert len(batching.inner.asks) < 4


def test_a_partial_caller_hears_which_shard_missed_and_a_strict_one_fails() -> None:
    fake = FakeShards()
    fake.down = True
    batching = BatchingShards(fake, max_batch=64, max_wait_ms=WAIT_MS)

    def partial() -> tuple[list[Any], list[int]]:
        with partial_results() as report:
            answers = batching.ask("sparse", sparse_queries(2, 0), 3)
        assert report is not None
        return answers, report.answered

    def strict() -> object:
        try:
            return batching.ask("sparse", sparse_queries(1, 0), 3)
        except ShardUnavailableError as error:
            return error

    (answers, answered), failure = at_once([partial, strict])
    batching.close()
    assert answers[1] is None and len(answers[0]) == 2 and answered == [0]
    assert isinstance(failure, ShardUnavailableError)


def test_a_server_sends_concurrent_searches_of_a_sharded_collection_together(
    tmp_path, serve_state
) -> None:
    from conftest import DOCUMENTS, write_jsonl
    from helpers import HashingEncoder

    from densekit.store import BuildOptions
    from densekit.store.sharded_build import build_sharded

    corpus = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    options = BuildOptions(progress=False, cache_dir=None, retriever="dense")
    build_sharded(corpus, tmp_path / "sharded", options, shards=2, encoder=HashingEncoder()).close()
    whole = build_hashing_collection(tmp_path / "whole")
    batching = BatchSettings(max_wait_ms=WAIT_MS)  # the searches surely overlap
    url = serve_state(
        hashing_state({"sharded": tmp_path / "sharded", "whole": whole}, batching=batching)
    )
    words = ["vitamin D bones", "comets", "bread", "sugar", "exercise", "sleep"]

    def search(name: str, text: str) -> list[tuple[str, float]]:
        body = {"collection": name, "query": text, "k": 3, "retriever": "dense"}
        answer = httpx.post(f"{url}/search", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        return [(hit["id"], hit["score"]) for hit in answer.json()["results"][0]["hits"]]

    found = at_once([lambda text=text: search("sharded", text) for text in words * 4])
    for mine, text in zip(found, words * 4, strict=True):
        assert_same_ranking(mine, search("whole", text))
    metrics = httpx.get(f"{url}/metrics").text
    count = [
        line for line in metrics.splitlines() if line.startswith("densekit_shard_batch_size_count")
    ]
    assert count and 'collection="sharded"' in count[0]
    assert float(count[0].split()[-1]) < len(found)  # fewer asks than searches


def test_a_search_whose_pieces_lost_every_shard_fails_instead_of_answering_nothing() -> None:
    """A caller's queries go in pieces of 64; if each piece loses a different shard, no
    shard answered all of them: that is an unavailable search, not an empty one."""
    from densekit.serve.batching import PIECE

    class LosingOnePerAsk(FakeShards):
        asks = 0

        def ask(self, method: str, matrix: csr_matrix, k: int) -> list[Any]:
            answers = super().ask(method, matrix, k)
            lost, self.asks = self.asks % 2, self.asks + 1
            report = partial_report()
            assert report is not None
            report.missing.add(lost)
            answers[lost] = None
            return answers

    batching = BatchingShards(LosingOnePerAsk(), max_batch=PIECE, max_wait_ms=0)
    with partial_results(), pytest.raises(ShardUnavailableError, match="no shard answered"):
        batching.ask("sparse", sparse_queries(2 * PIECE, 0), 3)
    batching.close()


def test_queries_with_settings_that_cannot_be_hashed_are_searched_on_their_own() -> None:
    class Echo:
        def ask(self, method: str, matrix: csr_matrix, depth: list[int]) -> list[Any]:
            sums = np.asarray(matrix.sum(axis=1)).ravel()
            return [[(np.array([0]), np.array([s + depth[0]])) for s in sums]]

        def ask_each(self, method: str, args: Any) -> list[Any]:
            raise AssertionError("not asked here")

    batching = BatchingShards(Echo(), max_batch=64, max_wait_ms=WAIT_MS)
    found = at_once(
        [
            lambda m=m: batching.ask("sparse", m, [m.shape[0]])
            for m in (sparse_queries(1, 0), sparse_queries(2, 10))
        ]
    )
    batching.close()
    assert [len(shard) for (shard,) in found] == [1, 2]
    assert [float(s[0]) for _, s in found[1][0]] == [float(4 * 10 + 6 + 2), float(4 * 10 + 22 + 2)]
