"""Searchers: a setting's pipeline over a collection, and when its models load."""

from __future__ import annotations

import pytest
from helpers import HashingEncoder

from densekit.errors import InputError
from densekit.retrieve import Collection, Searcher
from densekit.store import StoredCollection


def test_the_query_model_loads_at_the_first_search_not_when_the_searcher_is_made(
    hashing_collection, monkeypatch
):
    loads: list[HashingEncoder] = []

    def load(self: StoredCollection) -> HashingEncoder:
        loads.append(HashingEncoder())
        return loads[-1]

    monkeypatch.setattr(StoredCollection, "encoder", property(load))
    with Collection(hashing_collection.directory) as collection:
        searcher = collection.searcher("hybrid")
        assert loads == []
        with pytest.raises(InputError, match="query 1 is empty"):
            searcher.search(["  "], 3)  # refused without loading a model
        assert loads == []
        assert searcher.search(["salmon rivers"], 1)[0][0].id == "d4"
        searcher.search(["cats"], 1)
        assert len(loads) == 1


def test_a_searcher_made_by_hand_needs_a_query_encoder_function(hashing_collection):
    with pytest.raises(TypeError, match=r"Collection\.searcher"):
        Searcher(hashing_collection.stored, "dense")  # type: ignore[arg-type]
