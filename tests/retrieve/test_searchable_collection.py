"""The searchable collection: views of one stored snapshot and their query side."""

from __future__ import annotations

import threading

import pytest
from helpers import HashingEncoder

from densekit.errors import ModelMismatchError
from densekit.retrieve import Collection
from densekit.store import StoredCollection


def test_a_refused_encoder_closes_the_store_it_opened(hashing_collection, monkeypatch):
    closed: list[StoredCollection] = []
    monkeypatch.setattr(StoredCollection, "close", lambda self: closed.append(self))
    with pytest.raises(ModelMismatchError):
        Collection(hashing_collection.directory, encoder=HashingEncoder(salt="other"))
    assert len(closed) == 1


def test_a_refused_encoder_leaves_a_given_store_open(hashing_collection, monkeypatch):
    closed: list[StoredCollection] = []
    monkeypatch.setattr(StoredCollection, "close", lambda self: closed.append(self))
    with pytest.raises(ModelMismatchError):
        hashing_collection.with_encoder(HashingEncoder(salt="other"))
    assert closed == []


def test_a_missing_attribute_is_named_on_the_collection(hashing_collection):
    with pytest.raises(AttributeError, match="'Collection' object has no attribute 'nothing'"):
        hashing_collection.nothing  # noqa: B018


@pytest.mark.parametrize(
    ("name", "instead"),
    [("use_encoder", "with_encoder"), ("use_query_vectors", "with_query_vectors")],
)
def test_the_encoder_swapping_methods_point_to_their_views(hashing_collection, name, instead):
    with pytest.raises(AttributeError, match=rf"{instead}\("):
        getattr(hashing_collection, name)


def test_concurrent_first_searches_of_one_setting_make_one_searcher(
    hashing_collection, monkeypatch
):
    """A server's requests share a snapshot: a pipeline's rerankers must load once."""
    from densekit.retrieve import searcher as searcher_module

    made: list[object] = []
    entered = threading.Semaphore(0)
    release = threading.Event()
    real = searcher_module.Searcher

    class SlowToMake(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            made.append(self)
            entered.release()
            release.wait(timeout=30)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(searcher_module, "Searcher", SlowToMake)
    found: list[object] = []
    threads = [
        threading.Thread(target=lambda: found.append(hashing_collection.searcher("bm25")))
        for _ in range(2)
    ]
    threads[0].start()
    assert entered.acquire(timeout=30)  # the first is making its searcher
    threads[1].start()
    # The second either makes another (the race) or waits for the first's.
    entered.acquire(timeout=1)
    release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(made) == 1
    assert found[0] is found[1]
