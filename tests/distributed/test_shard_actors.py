"""Scatter-gather on shard actors of a real two-node Ray cluster: the same rankings as the
unsharded collection, through a killed actor; a shard that stays down is a 503, never a
silently shorter list."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import FUSED_REL, assert_same_ranking, assert_same_rankings

from densekit.distributed.shard_actors import ray_opener
from densekit.retrieve import Collection
from densekit.retrieve.scatter_gather import ShardUnavailableError, partial_results, shards_of


@pytest.fixture
def on_actors(ray_cluster, sharded_scifact):
    """The sharded SciFact collection opened again, its shards searched by actors."""
    whole, sharded, queries = sharded_scifact
    collection = Collection(ray_opener(sharded.directory))
    yield whole, collection, queries
    collection.close()


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_shard_actors_rank_as_the_unsharded_collection(on_actors, retriever: str) -> None:
    whole, sharded, queries = on_actors
    assert type(shards_of(sharded.stored)).__name__ == "RayShards"
    assert_same_rankings(sharded, whole, queries, [retriever])


def test_a_killed_shard_actor_is_restarted_from_its_files(on_actors) -> None:
    import ray

    whole, sharded, queries = on_actors
    assert_same_rankings(sharded, whole, queries[:20], ["hybrid"])
    ray.kill(shards_of(sharded.stored).actors[1], no_restart=False)
    # Retried on the restarted actor:
    assert_same_rankings(sharded, whole, queries[20:60], ["hybrid"])


def test_a_shard_that_stays_down_fails_the_search_naming_it(on_actors) -> None:
    import ray

    _, sharded, queries = on_actors
    searcher = sharded.searcher("bm25")
    ray.kill(shards_of(sharded.stored).actors[2], no_restart=True)
    with pytest.raises(ShardUnavailableError, match=r"shard 2 \(shard-002-of-003-\w+\) stopped"):
        searcher.search(queries[:5], 10)
    with partial_results() as report:  # allowed: the other shards' documents, and which
        found = searcher.search(queries[:5], 10)
    assert report.answered == [0, 1] and report.missing == {2}
    down = set(sharded.stored.shards[2].doc_ids)
    assert all(hits and not {h.id for h in hits} & down for hits in found)


def test_the_server_answers_from_shard_actors_and_503_when_a_shard_is_down(
    ray_cluster, sharded_scifact, serve_state, tmp_path: Path
) -> None:
    import httpx
    import ray

    from densekit.serve.catalog import Catalog
    from densekit.serve.metrics import ServerMetrics
    from densekit.serve.models import BatchSettings, ModelPool
    from densekit.serve.state import ServerState

    whole, sharded, queries = sharded_scifact
    metrics = ServerMetrics()
    models = ModelPool(BatchSettings(), observe=metrics.observe_batch)
    catalog = Catalog({"sharded": sharded.directory, "whole": whole.directory}, models, ray_opener)
    url = serve_state(ServerState(catalog=catalog, models=models, metrics=metrics))
    answers = {
        name: httpx.post(
            f"{url}/search", json={"collection": name, "query": queries[0], "k": 10}, timeout=60
        ).json()["results"][0]["hits"]
        for name in ("sharded", "whole")
    }
    assert_same_ranking(  # the server's default retriever is hybrid: fused scores
        [(h["id"], h["score"]) for h in answers["sharded"]],
        [(h["id"], h["score"]) for h in answers["whole"]],
        rel=FUSED_REL,
    )
    with catalog["sharded"].snapshot() as served:
        ray.kill(shards_of(served.stored).actors[0], no_restart=True)
    down = httpx.post(f"{url}/search", json={"collection": "sharded", "query": queries[1]})
    assert down.status_code == 503
    assert "shard 0" in down.json()["detail"] and "try again" in down.json()["detail"]
    partial = httpx.post(
        f"{url}/search",
        json={"collection": "sharded", "query": queries[1], "allow_partial": True},
    )
    assert partial.status_code == 200, partial.text
    assert partial.json()["shards"] == {"answered": [1, 2], "missing": [0]}
    assert partial.json()["results"][0]["hits"]
    catalog.close()


def test_writes_through_a_server_on_shard_actors_are_searched_and_kept(
    ray_cluster, sharded_scifact, serve_state, tmp_path: Path
) -> None:
    import shutil

    import httpx
    from serving import API_KEY

    from densekit.retrieve import open_collection
    from densekit.serve.catalog import Catalog
    from densekit.serve.metrics import ServerMetrics
    from densekit.serve.models import BatchSettings, ModelPool
    from densekit.serve.state import ServerState

    _, sharded, queries = sharded_scifact
    copy = shutil.copytree(sharded.directory, tmp_path / "sharded")
    models = ModelPool(BatchSettings())
    catalog = Catalog({"c": copy}, models, ray_opener)
    url = serve_state(ServerState(catalog=catalog, models=models, metrics=ServerMetrics(),
                                  api_key=API_KEY))  # fmt: skip
    search = {"collection": "c", "query": queries[0], "k": 5}
    top = httpx.post(f"{url}/search", json=search, timeout=60).json()["results"][0]["hits"][0]
    key = {"Authorization": f"Bearer {API_KEY}"}
    deleted = httpx.post(f"{url}/collections/c/delete", json={"ids": [top["id"]]}, headers=key)
    assert deleted.status_code == 200, deleted.text
    after = httpx.post(f"{url}/search", json=search, timeout=60).json()["results"][0]["hits"]
    assert top["id"] not in [hit["id"] for hit in after]
    catalog.close()
    with open_collection(copy) as reopened:  # acknowledged, so on disk
        assert top["id"] not in reopened.doc_ids and len(reopened) == len(sharded) - 1
