"""Distributed encoding on a real two-node Ray cluster: the same files as a local build,
through killed workers, Ctrl-C and bad requests."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import densekit
from densekit.distributed import encoding as encoding_module
from densekit.distributed import plan_workers, ray_encoding
from densekit.distributed.cluster import Resources, connected
from densekit.errors import CollectionError, InputError, MissingDependencyError
from densekit.store import BuildOptions
from densekit.store.builder import build_collection as build_stored
from densekit.store.collection import StoredCollection

PARTITION_ROWS = 32  # 300 documents: 10 partitions, so both workers get several
STATIC = BuildOptions(
    model="static", retriever="dense", rows_per_shard=PARTITION_ROWS, progress=False, cache_dir=None
)


def _vectors(collection: StoredCollection) -> tuple[list[str], np.ndarray]:
    vectors, _ = collection.dense_vectors()
    return collection.doc_ids, vectors.take(np.arange(len(collection)))


def _assert_same_vectors(built: StoredCollection, reference: StoredCollection) -> None:
    ids, vectors = _vectors(built)
    reference_ids, reference_vectors = _vectors(reference)
    assert ids == reference_ids
    cosines = np.sum(vectors * reference_vectors, axis=1)
    assert cosines.min() >= 0.99999


@pytest.fixture(scope="module")
def local_static(scifact_part, tmp_path_factory) -> StoredCollection:
    corpus, _ = scifact_part
    return build_stored(corpus, tmp_path_factory.mktemp("local") / "c", STATIC)


def _distributed_build(corpus: Path, out: Path, options: BuildOptions, **pool) -> StoredCollection:
    encoder = options.load_encoder()
    with ray_encoding(options, encoder.fingerprint, **pool) as remote:
        return build_stored(corpus, out, options, encoder=encoder, remote=remote)


# --- worker plans -------------------------------------------------------------------------


def test_one_worker_per_core_by_default_each_with_a_share_that_fits_a_node() -> None:
    plan = plan_workers(Resources(cpus=8, gpus=0, nodes=2), [4, 4])
    assert (plan.workers, plan.cpus, plan.note) == (8, 1, None)
    plan = plan_workers(Resources(cpus=8, gpus=0, nodes=2), [4, 4], workers=2)
    assert (plan.workers, plan.cpus) == (2, 4)
    # Three 2-core workers would not fit two 3-core nodes: each gets 1 core.
    plan = plan_workers(Resources(cpus=6, gpus=0, nodes=2), [3, 3], workers=3)
    assert plan.workers == 3 and plan.cpus == 1


def test_more_workers_than_the_cluster_has_room_for_are_cut_and_said() -> None:
    plan = plan_workers(Resources(cpus=2, gpus=0, nodes=2), [1, 1], workers=5)
    assert plan.workers == 2
    assert plan.note == "5 workers asked, but the cluster has 2 CPU cores: using 2"
    plan = plan_workers(Resources(cpus=16, gpus=4, nodes=1), [16], workers=8, gpus_per_worker=1)
    assert plan.workers == 4 and plan.gpus == 1 and "4 GPUs" in plan.note


def test_gpu_workers_need_gpus() -> None:
    with pytest.raises(InputError, match=r"--gpus-per-worker 1, but the cluster has 0 GPUs"):
        plan_workers(Resources(cpus=2, gpus=0, nodes=1), [2], gpus_per_worker=1)
    with pytest.raises(InputError, match="--workers 0"):
        plan_workers(Resources(cpus=2, gpus=0, nodes=1), [2], workers=0)


# --- bad input ----------------------------------------------------------------------------


def test_without_ray_installed_the_error_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"densekit\[ray\]"), connected():
        pass


def test_an_unreachable_address_fails_fast_naming_it(monkeypatch) -> None:
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process
    unreachable = r"no Ray cluster answers at 127\.0\.0\.1:9 .*`ray start --head`"
    with pytest.raises(InputError, match=unreachable), connected("127.0.0.1:9"):
        pass
    with pytest.raises(InputError, match="HOST:PORT"), connected("nowhere"):
        pass


# --- builds on the cluster ----------------------------------------------------------------


@pytest.mark.slow
def test_distributed_build_equals_the_local_one_with_the_default_model(
    ray_cluster, scifact_part, tmp_path
) -> None:
    corpus, queries = scifact_part
    options = BuildOptions(retriever="dense", rows_per_shard=64, progress=False, cache_dir=None)
    local = build_stored(corpus, tmp_path / "local", options)
    built = _distributed_build(corpus, tmp_path / "ray", options, workers=2)
    _assert_same_vectors(built, local)
    assert built.manifest.dense.shards == [
        s.replace(local.manifest.generation, built.manifest.generation)
        for s in local.manifest.dense.shards
    ]
    one, other = (densekit.Collection(c.directory) for c in (local, built))
    first, second = (c.search_many(queries, k=10, retriever="dense") for c in (one, other))
    assert [[h.id for h in hits] for hits in first] == [[h.id for h in hits] for hits in second]


def _kill_worker_0(monkeypatch, after: int, restart: bool) -> None:
    """Kill encoding worker 0 right after the ``after``-th partition is sent (Ray restarts it
    only with ``restart``)."""
    import ray

    submitted = []
    submit = encoding_module.RayEncoding.submit

    def submit_then_kill(self, key, texts):
        submit(self, key, texts)
        submitted.append(key)
        if len(submitted) == after and 0 in self.actors:
            ray.kill(self.actors[0], no_restart=not restart)

    monkeypatch.setattr(encoding_module.RayEncoding, "submit", submit_then_kill)


def test_a_killed_worker_has_its_partition_retried(
    ray_cluster, scifact_part, local_static, tmp_path, monkeypatch
) -> None:
    _kill_worker_0(monkeypatch, after=3, restart=True)  # a partition is in flight on it
    corpus, _ = scifact_part
    built = _distributed_build(corpus, tmp_path / "c", STATIC, workers=2)
    _assert_same_vectors(built, local_static)
    assert built.manifest.stats["encoding"]["encoded_passages"] == len(local_static)


def test_a_worker_that_cannot_come_back_leaves_its_partitions_to_the_others(
    ray_cluster, scifact_part, local_static, tmp_path, monkeypatch, capsys
) -> None:
    _kill_worker_0(monkeypatch, after=2, restart=False)
    corpus, _ = scifact_part
    built = _distributed_build(corpus, tmp_path / "c", STATIC, workers=2)
    _assert_same_vectors(built, local_static)
    assert "encoding worker 0 could not be restarted; going on with 1" in capsys.readouterr().err


def test_ctrl_c_keeps_finished_partitions_and_the_rerun_does_only_the_rest(
    ray_cluster, scifact_part, local_static, tmp_path, monkeypatch
) -> None:
    finished = encoding_module.RayEncoding.finished
    calls = []

    def interrupted(self, wait):
        calls.append(wait)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return finished(self, wait)

    corpus, _ = scifact_part
    out = tmp_path / "c"
    with monkeypatch.context() as patched:
        patched.setattr(encoding_module.RayEncoding, "finished", interrupted)
        with pytest.raises(KeyboardInterrupt):
            _distributed_build(corpus, out, STATIC, workers=2)
    with pytest.raises(CollectionError):
        StoredCollection(out)  # nothing published
    built = _distributed_build(corpus, out, STATIC, workers=2)
    report = built.manifest.stats["encoding"]
    assert report["resumed_shards"] >= 1
    assert report["resumed_passages"] + report["encoded_passages"] == len(local_static)
    _assert_same_vectors(built, local_static)


def test_workers_use_the_embedding_cache(ray_cluster, scifact_part, tmp_path) -> None:
    corpus, _ = scifact_part
    options = BuildOptions(
        model="static",
        retriever="dense",
        rows_per_shard=PARTITION_ROWS,
        progress=False,
        cache_dir=tmp_path / "cache",
    )
    first = _distributed_build(corpus, tmp_path / "first", options, workers=2)
    again = _distributed_build(corpus, tmp_path / "again", options, workers=2)
    assert first.manifest.stats["encoding"]["encoded_passages"] == len(first)
    assert again.manifest.stats["encoding"]["cached_passages"] == len(first)
    assert again.manifest.stats["encoding"]["encoded_passages"] == 0
    _assert_same_vectors(again, first)


def test_more_workers_than_cores_use_what_exists(
    ray_cluster, scifact_part, local_static, tmp_path, capsys
) -> None:
    corpus, _ = scifact_part
    built = _distributed_build(corpus, tmp_path / "c", STATIC, workers=8)
    assert "8 workers asked, but the cluster has 2 CPU cores: using 2" in capsys.readouterr().err
    _assert_same_vectors(built, local_static)


def test_a_worker_runs_its_model_in_the_precision_the_driver_was_given() -> None:
    from densekit.encode.precision import default_precision, using_precision

    with using_precision("bf16"):
        handed = default_precision()
    worker = encoding_module.EncoderWorker(BuildOptions(progress=False), 1, handed)
    assert handed == "bf16" and worker.encoder.precision == "bf16"
    assert (
        encoding_module.EncoderWorker(BuildOptions(progress=False), 1).encoder.precision == "fp32"
    )
