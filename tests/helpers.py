"""Test doubles shared across the suite."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from densekit.corpus import Document
from densekit.encode import ModelSpec
from densekit.retrieve import Collection

_WORD = re.compile(r"\w+")

WORDS = [
    "vitamin",
    "bone",
    "fracture",
    "market",
    "crash",
    "protein",
    "folding",
    "river",
    "salmon",
    "cat",
    "dog",
]
QUERIES = ["vitamin bone", "market crash w3", "protein river", "salmon w17 w42"]


def make_documents(start: int, count: int, seed: int = 0) -> list[Document]:
    rng = np.random.default_rng(seed + start)
    documents = []
    for i in range(start, start + count):
        topic = " ".join(rng.choice(WORDS, size=3))
        noise = " ".join(f"w{rng.integers(0, 60)}" for _ in range(int(rng.integers(4, 30))))
        documents.append(Document(f"d{i}", f"{topic} {noise}", title=f"doc {i}"))
    return documents


def topic_documents(topics: int, per_topic: int, seed: int = 0) -> list[Document]:
    """Documents about one of ``topics`` topics each: 12 words only that topic uses, mixed
    with words every topic uses. Document ``t{topic}-{i}``."""
    rng = np.random.default_rng(seed)
    shared = [f"common{i}" for i in range(20)]
    documents = []
    for topic in range(topics):
        own = [f"topic{topic}word{i}" for i in range(12)]
        for i in range(per_topic):
            text = [*rng.choice(own, size=12), *rng.choice(shared, size=8)]
            rng.shuffle(text)
            documents.append(Document(f"t{topic}-{i}", " ".join(text)))
    return documents


def write_corpus(path: Path, documents: list[Document]) -> Path:
    return write_jsonl(path, [{"_id": d.id, "title": d.title, "text": d.text} for d in documents])


def write_judged_dataset(root: Path, count: int, every: int) -> list[Document]:
    """A BEIR dataset at ``root``: ``count`` documents (:func:`make_documents`) and a train
    query for every ``every``-th one, its topic words, judging that document. Returns the
    judged documents."""
    (root / "qrels").mkdir(parents=True)
    documents = make_documents(0, count)
    write_corpus(root / "corpus.jsonl", documents)
    picked = documents[::every]
    queries = [{"_id": f"q{i}", "text": d.text.split(" w")[0]} for i, d in enumerate(picked)]
    write_jsonl(root / "queries.jsonl", queries)
    judged = "".join(f"q{i}\t{d.id}\t1\n" for i, d in enumerate(picked))
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + judged, encoding="utf-8"
    )
    return picked


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


class HashingEncoder:
    """A deterministic bag-of-words encoder: fast, model-free, and similar texts score high."""

    def __init__(self, dimension: int = 64, salt: str = "") -> None:
        self.spec = ModelSpec(name=f"hashing{salt}", location="hashing")
        self._dimension = dimension
        self._salt = salt

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"hashing:{self._dimension}:{self._salt}".encode()).hexdigest()[:32]

    @property
    def max_tokens(self) -> int:
        return 512

    @property
    def document_tokens(self) -> int:
        return 510

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(text)) + 2 for text in texts]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [match.span() for match in _WORD.finditer(text)]

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.encode_documents(texts)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int(hashlib.md5((self._salt + word).encode()).hexdigest(), 16)
                out[row, bucket % self._dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def kill_once_writing(arguments: Sequence[object], directory: Path, after: float = 0.2) -> None:
    """Run `densekit ARGUMENTS`, wait until it writes a new generation's documents into
    ``directory``, then SIGKILL it ``after`` seconds later."""
    before = {p.name for p in directory.glob("gen-*")} if directory.exists() else set()

    def writing() -> bool:
        fresh = [p for p in directory.glob("gen-*") if p.name not in before]
        return bool(fresh) and (fresh[0] / "documents.sqlite").exists()

    kill_when(arguments, writing, after)


def kill_when(arguments: Sequence[object], ready: Callable[[], bool], after: float = 0.2) -> None:
    """Run `densekit ARGUMENTS` and SIGKILL it ``after`` seconds once ``ready()`` holds."""
    command = [sys.executable, "-m", "densekit.cli.main", *(str(a) for a in arguments)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if ready():
                time.sleep(after)
                break
            assert process.poll() is None, "the command finished before it could be killed"
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def judged_hashing_collection(dataset: Path, out: Path) -> Collection:
    """Give ``dataset`` train judgements (q1 -> d3; q2 -> d2 and a document not in the corpus)
    and build a HashingEncoder collection of its corpus at ``out``."""
    from densekit.retrieve import build_collection
    from densekit.store import BuildOptions

    (dataset / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\nq2\tgone\t1\n", encoding="utf-8"
    )
    collection = build_collection(
        dataset / "corpus.jsonl",
        out,
        BuildOptions(progress=False, cache_dir=None),
        encoder=HashingEncoder(),
    )
    collection = collection.with_encoder(HashingEncoder())
    return collection


_BASIS = np.random.default_rng(0)
_MEAN = 0.8 * _BASIS.normal(size=64)
_LOW_RANK = _BASIS.normal(size=(64, 12))


def anisotropic(count: int, seed: int) -> np.ndarray:
    """64-dimensional unit vectors sharing a common direction and varying along a few others,
    as sentence embeddings do: most sign bits say the same for every vector."""
    rng = np.random.default_rng(seed)
    points = _MEAN + 0.3 * rng.normal(size=(count, 12)) @ _LOW_RANK.T
    points += 0.05 * rng.normal(size=(count, 64))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def clustered(count: int, seed: int, dimension: int = 64) -> np.ndarray:
    """Unit vectors around 20 centres: neighbourhoods like real embeddings have, not noise."""
    centres = np.random.default_rng(0).standard_normal((20, dimension))
    rng = np.random.default_rng(seed)
    points = centres[rng.integers(0, 20, count)] + 0.4 * rng.standard_normal((count, dimension))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def unit_rows(count: int, dimension: int, seed: int = 0) -> np.ndarray:
    """``count`` random unit vectors."""
    vectors = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# Fusion's per-query calibration scales float32 rounding of the lists' scores (which differs
# with how a product or a sum is split, by machine) up to about this much in fused scores.
FUSED_REL = 1e-5


def assert_same_ranking(
    mine: list[tuple[str, float]], theirs: list[tuple[str, float]], rel: float = 1e-6
) -> None:
    """Two rankings of (id, score) are one: scores equal rank by rank (to float32 rounding,
    which differs with how a matrix product is split; ``rel`` widens that where the vectors
    themselves carry rounding), documents the same up to the order of exact ties, which neither
    an index nor a merge orders by anything but position; documents tied at the last score may
    differ, as the cut at k keeps any of them."""
    import itertools

    import pytest

    assert [s for _, s in mine] == pytest.approx([s for _, s in theirs], rel=rel, abs=1e-6)
    last = theirs[-1][1] if theirs else None
    for score, group in itertools.groupby(range(len(theirs)), key=lambda i: theirs[i][1]):
        positions = list(group)
        if score != last:
            assert {mine[i][0] for i in positions} == {theirs[i][0] for i in positions}


def assert_same_rankings(
    one: Collection,
    other: Collection,
    queries: list[str],
    retrievers: Sequence[str] = ("dense", "bm25", "hybrid"),
) -> None:
    """``one`` ranks ``queries`` as ``other`` does (``assert_same_ranking``) with each retriever."""
    for retriever in retrievers:
        expected = other.searcher(retriever).search(queries, 10)
        found = one.searcher(retriever).search(queries, 10)
        rel = FUSED_REL if retriever == "hybrid" else 1e-6
        for mine, theirs in zip(found, expected, strict=True):
            pairs = [(h.id, h.score) for h in mine], [(h.id, h.score) for h in theirs]
            assert_same_ranking(*pairs, rel=rel)
