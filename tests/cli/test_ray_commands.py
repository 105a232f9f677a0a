"""`--ray` through the CLI: a collection encoded by a cluster's workers in one process,
searched in the next; requests the cluster cannot serve get exit 2 and a message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from required import require


def densekit(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "densekit.cli.main", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


FLAGS = ("--model", "static", "--quiet", "--no-cache", "--shard-rows", "32")


def test_index_sharded_on_the_cluster_then_search_in_another_process(
    ray_cluster, scifact_part, tmp_path: Path
) -> None:
    require("static_model")
    corpus, queries = scifact_part
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert densekit("index", corpus, "--out", local, *FLAGS).returncode == 0
    built = densekit(
        "index", corpus, "--out", distributed, *FLAGS, "--shards", 2,
        "--ray", ray_cluster.address, "--workers", 2,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert "built" in built.stdout and "300 documents in 2 shards" in built.stdout
    for query in queries[:3]:
        found = [
            json.loads(densekit("search", c, query, "--json").stdout)["hits"]
            for c in (distributed, local)
        ]
        assert [h["id"] for h in found[0]] == [h["id"] for h in found[1]]
        assert np.allclose([h["score"] for h in found[0]], [h["score"] for h in found[1]])


def test_encode_on_the_cluster_writes_the_same_vectors(
    ray_cluster, scifact_part, tmp_path: Path
) -> None:
    require("static_model")
    corpus, _ = scifact_part
    here = densekit("encode", corpus, "--out", tmp_path / "here", *FLAGS)
    there = densekit(
        "encode", corpus, "--out", tmp_path / "there", *FLAGS, "--ray", ray_cluster.address
    )
    assert here.returncode == there.returncode == 0, there.stderr
    shards = sorted(p.name for p in (tmp_path / "here").glob("*.npy"))
    assert len(shards) == 10 and shards == sorted(
        p.name for p in (tmp_path / "there").glob("*.npy")
    )
    for name in shards:
        mine, theirs = (np.load(tmp_path / side / name) for side in ("there", "here"))
        assert np.sum(mine * theirs, axis=1).min() >= 0.99999


def test_requests_the_cluster_cannot_serve_exit_2_with_a_reason(
    scifact_part, tmp_path: Path
) -> None:
    corpus, _ = scifact_part
    out = tmp_path / "c"
    cases = {
        ("--workers", "2"): "--workers and --gpus-per-worker size a Ray worker pool; add --ray",
        ("--ray", "127.0.0.1:9"): "no Ray cluster answers at 127.0.0.1:9",
        ("--ray", "auto", "--retriever", "bm25"): "a bm25 collection",
    }
    for arguments, message in cases.items():
        done = densekit("index", corpus, "--out", out, *FLAGS, *arguments)
        assert done.returncode == 2, (arguments, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
        assert not out.exists()


def test_search_a_sharded_collection_with_shard_actors(
    ray_cluster, scifact_part, tmp_path: Path
) -> None:
    require("static_model")
    corpus, queries = scifact_part
    out = tmp_path / "sharded"
    built = densekit("index", corpus, "--out", out, "--shards", 3, *FLAGS)
    assert built.returncode == 0, built.stderr
    for retriever in ("dense", "bm25", "hybrid"):
        found = [
            json.loads(
                densekit("search", out, queries[0], "--retriever", retriever, "--json", *ray).stdout
            )["hits"]
            for ray in ((), ("--ray", ray_cluster.address))
        ]
        assert [h["id"] for h in found[0]] == [h["id"] for h in found[1]]
        assert np.allclose([h["score"] for h in found[0]], [h["score"] for h in found[1]])
