from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest
from helpers import HashingEncoder

from densekit.errors import DensekitError
from densekit.serve.batching import PIECE, BatchingEncoder, EncodeTimeoutError, MicroBatcher
from densekit.serve.cancellation import Cancellation, RequestCancelledError


class Recorder:
    """Encodes like the hashing encoder and records every batch it was given."""

    def __init__(self, delay: float = 0.0) -> None:
        self.inner = HashingEncoder()
        self.batches: list[list[str]] = []
        self.delay = delay

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if any(text == "boom" for text in texts):
            raise ValueError("cannot encode 'boom'")
        self.batches.append(list(texts))
        time.sleep(self.delay)
        return self.inner.encode_queries(texts)


def submit_concurrently(batcher: MicroBatcher, jobs: list[list[str]]) -> list[object]:
    results: list[object] = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def call(i: int) -> None:
        start.wait()
        try:
            results[i] = batcher.submit(jobs[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_callers_share_batches_and_get_their_own_rows() -> None:
    recorder = Recorder(delay=0.01)
    batcher = MicroBatcher(recorder, max_batch=64, max_wait_ms=50)
    jobs = [[f"text number {i}", f"another {i}"] for i in range(16)]
    results = submit_concurrently(batcher, jobs)
    batcher.close()
    direct = HashingEncoder()
    for job, vectors in zip(jobs, results, strict=True):
        np.testing.assert_array_equal(vectors, direct.encode_queries(job))
    assert len(recorder.batches) < len(jobs)  # batched, not one call per caller
    assert sum(len(batch) for batch in recorder.batches) == 32


def test_batches_respect_max_batch_and_never_split_a_job() -> None:
    recorder = Recorder(delay=0.005)
    batcher = MicroBatcher(recorder, max_batch=4, max_wait_ms=20)
    jobs = [["a", "b", "c"], ["d"], ["e", "f"], ["g", "h", "i", "j", "k", "l"]]
    submit_concurrently(batcher, jobs)
    batcher.close()
    for batch in recorder.batches:
        assert len(batch) <= 4 or batch == jobs[3]  # an oversized job goes alone, whole
    flattened = sorted(text for batch in recorder.batches for text in batch)
    assert flattened == sorted(text for job in jobs for text in job)


def test_one_callers_bad_text_fails_only_that_caller() -> None:
    recorder = Recorder(delay=0.01)
    batcher = MicroBatcher(recorder, max_batch=64, max_wait_ms=50)
    results = submit_concurrently(batcher, [["fine"], ["boom"], ["also fine"]])
    batcher.close()
    assert isinstance(results[1], ValueError)
    assert isinstance(results[0], np.ndarray) and isinstance(results[2], np.ndarray)


def test_max_batch_one_encodes_every_request_alone() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch=1, max_wait_ms=0)
    submit_concurrently(batcher, [["a"], ["b"], ["c", "d"]])
    batcher.close()
    assert sorted(map(tuple, recorder.batches)) == [("a",), ("b",), ("c", "d")]


def test_big_requests_travel_in_pieces_so_others_get_a_turn() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch=16, max_wait_ms=0)
    texts = [f"document {i}" for i in range(200)]
    vectors = batcher.submit(texts)
    batcher.close()
    np.testing.assert_array_equal(vectors, HashingEncoder().encode_queries(texts))
    assert all(len(batch) <= PIECE for batch in recorder.batches)


def test_a_caller_past_its_timeout_gets_an_error_and_its_work_is_dropped() -> None:
    gate = threading.Event()
    calls: list[list[str]] = []

    def stuck(texts):
        calls.append(list(texts))
        gate.wait(5)
        return HashingEncoder().encode_queries(texts)

    batcher = MicroBatcher(stuck, max_batch=1, max_wait_ms=0, timeout_s=0.2)
    first = threading.Thread(target=lambda: _outcome(batcher, "holds the model"))
    first.start()
    time.sleep(0.05)
    with pytest.raises(EncodeTimeoutError, match="overloaded"):
        batcher.submit(["waits too long"])
    gate.set()
    first.join()
    batcher.close()
    assert calls == [["holds the model"]]  # the abandoned job never reached the model


def test_a_cancelled_caller_loses_its_queued_pieces_not_the_running_one() -> None:
    gate, started = threading.Event(), threading.Event()
    calls: list[list[str]] = []

    def held(texts):
        calls.append(list(texts))
        started.set()
        gate.wait(10)
        return HashingEncoder().encode_queries(texts)

    batcher = MicroBatcher(held, max_batch=PIECE, max_wait_ms=0)
    cancellation = Cancellation()
    texts = [f"text {i}" for i in range(PIECE * 5)]
    outcome: list[object] = []

    def caller() -> None:
        with cancellation.active():
            outcome.append(_outcome(batcher, texts))

    thread = threading.Thread(target=caller)
    thread.start()
    assert started.wait(10)
    cancellation.cancel()
    gate.set()
    thread.join(timeout=10)
    assert isinstance(outcome[0], RequestCancelledError)
    assert batcher.submit(["after"]).shape == (1, 64)  # the worker is free at once
    with cancellation.active(), pytest.raises(RequestCancelledError):
        batcher.submit(["too late"])  # an ended request starts nothing
    batcher.close()
    assert calls == [texts[:PIECE], ["after"]]


def test_closing_fails_what_is_left_instead_of_hanging() -> None:
    gate = threading.Event()

    def stuck(texts):
        gate.wait(5)
        return HashingEncoder().encode_queries(texts)

    batcher = MicroBatcher(stuck, max_batch=1, max_wait_ms=0)
    results = []
    threads = [
        threading.Thread(target=lambda t=t: results.append(_outcome(batcher, t)))
        for t in ("a", "b", "c")
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    batcher.close(wait_s=0.2)
    gate.set()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 3 and "shut down" in " ".join(map(str, results))


def _outcome(batcher: MicroBatcher, text: str | list[str]) -> object:
    try:
        return batcher.submit([text] if isinstance(text, str) else text)
    except DensekitError as exc:
        return exc


def test_closed_batcher_refuses_new_work_and_settings_are_checked() -> None:
    batcher = MicroBatcher(Recorder())
    batcher.close()
    with pytest.raises(DensekitError, match="shut down"):
        batcher.submit(["late"])
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(Recorder(), max_batch=0)


def test_batching_encoder_is_the_wrapped_model_to_a_collection(hashing_collection) -> None:
    sizes: list[int] = []
    encoder = BatchingEncoder(HashingEncoder(), observe=sizes.append)
    hashing_collection = hashing_collection.with_encoder(encoder)  # same fingerprint: accepted
    hits = hashing_collection.search("vitamin D", 2, retriever="dense")
    assert hits[0].id in {"d3", "d5"}
    assert encoder.token_lengths(["two words"]) == [4]
    assert sizes == [1]
    encoder.close()


@pytest.mark.slow
def test_batched_minilm_vectors_match_unbatched() -> None:
    from densekit.encode import load_encoder

    model = load_encoder("minilm")
    texts = [f"query {i} about {'vitamin D ' * (i % 5)}bones" for i in range(24)]
    alone = np.stack([model.encode_queries([text])[0] for text in texts])
    batcher = MicroBatcher(model.encode_queries, max_batch=64, max_wait_ms=50)
    together = np.concatenate(submit_concurrently(batcher, [[t] for t in texts]))  # type: ignore[arg-type]
    batcher.close()
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert (np.argsort(-together @ alone.T, axis=1)[:, 0] == np.arange(len(texts))).all()
