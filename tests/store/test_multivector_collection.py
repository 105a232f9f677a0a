"""Token vectors in a collection: built, searched across processes, changed, compacted, and
refused where a collection has none."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import QUERIES, make_documents, write_corpus

from densekit.corpus import Document
from densekit.errors import CollectionError, InputError
from densekit.index.late_interaction import TokenVectors
from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions, compact_collection, update_collection
from densekit.store.manifest import MULTIVECTOR_FORMAT_VERSION
from densekit.store.multivector import load_multivector_encoder

# Every document's every token gathered: the candidates are then the whole collection, so
# rankings compare exactly with a fresh build (whose token index codes tokens differently).
EVERY_TOKEN = {"per_token": 100_000}


def densekit(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "densekit.cli.main", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def build(tmp_path: Path, name: str, documents: list[Document], **options) -> Collection:
    source = write_corpus(tmp_path / f"{name}.jsonl", documents)
    settings = {"retriever": "bm25", "multivector": "minilm"} | options
    return build_collection(
        source, tmp_path / name, BuildOptions(progress=False, cache_dir=None, **settings)
    )


def results(collection: Collection) -> list[dict[str, float]]:
    return [
        {hit.id: round(hit.score, 4) for hit in hits}
        for hits in collection.search_many(
            QUERIES, len(collection), retriever="multivector", **EVERY_TOKEN
        )
    ]


def test_multivector_search_is_exact_maxsim_over_the_stored_token_vectors(tmp_path: Path) -> None:
    documents = make_documents(0, 40)
    collection = build(tmp_path, "c", documents)
    assert "multivector" in collection.retrievers
    assert collection.manifest.format_version == MULTIVECTOR_FORMAT_VERSION
    encoder = load_multivector_encoder("minilm")
    stored = TokenVectors.from_documents(encoder.encode_documents([d.content for d in documents]))
    for query, found in zip(QUERIES, results(collection), strict=True):
        (vectors,) = encoder.encode_queries([query])
        scores = stored.maxsim(vectors, np.arange(len(documents)))
        expected = {d.id: round(float(s), 4) for d, s in zip(documents, scores, strict=True)}
        assert found == pytest.approx(expected, abs=2e-4)
    # The token index's own candidates (the default search) put the same document first.
    default = collection.search_many(QUERIES, 3, retriever="multivector")
    assert [hits[0].id for hits in default] == [max(r, key=r.get) for r in results(collection)]


def test_a_search_in_another_process_reads_the_stored_token_vectors(tmp_path: Path) -> None:
    collection = build(tmp_path, "c", make_documents(0, 30))
    expected = [hit.id for hit in collection.search(QUERIES[0], 5, retriever="multivector")]
    shown = densekit(
        "search", tmp_path / "c", QUERIES[0], "--retriever", "multivector", "-k", 5, "--json"
    )
    assert shown.returncode == 0, shown.stderr
    assert [hit["id"] for hit in json.loads(shown.stdout)["hits"]] == expected


def test_token_vectors_follow_changes_and_compaction(tmp_path: Path) -> None:
    base = make_documents(0, 30)
    build(tmp_path, "c", base)
    added = [Document("new", "zebra giraffe okapi savanna vitamin")]
    replaced = Document("d4", "salmon river crash")
    update_collection(tmp_path / "c", add=added, update=[replaced], delete=["d1", "d2"])
    kept = [replaced if d.id == "d4" else d for d in base if d.id not in {"d1", "d2"}]
    fresh = results(build(tmp_path, "fresh", kept + added))
    changed = Collection(tmp_path / "c")
    assert changed.manifest.multivector.tokens > fresh_tokens(tmp_path / "fresh")  # tombstoned
    assert results(changed) == fresh
    token_index_finds_each_document(changed, [*kept, *added])
    compact_collection(tmp_path / "c")
    compacted = Collection(tmp_path / "c")
    assert results(compacted) == fresh
    assert compacted.manifest.multivector.tokens == fresh_tokens(tmp_path / "fresh")
    token_index_finds_each_document(compacted, [*kept, *added])


def token_index_finds_each_document(collection: Collection, documents: list[Document]) -> None:
    """Each document's own token vectors lead the token index back to its row: the index
    extended by a change, or refilled by compaction, is aligned with the documents."""
    index = collection.stored.multivector_index
    rows = {doc_id: row for row, doc_id in enumerate(collection.stored.row_ids) if doc_id}
    encoder = load_multivector_encoder("minilm")
    for document in documents:
        (tokens,) = encoder.encode_documents([document.content])
        assert rows[document.id] in index.candidates(tokens[:4], per_token=3), document.id


def fresh_tokens(directory: Path) -> int:
    return Collection(directory).manifest.multivector.tokens


def test_a_collection_without_token_vectors_refuses_multivector_search(tmp_path: Path) -> None:
    source = write_corpus(tmp_path / "c.jsonl", make_documents(0, 10))
    plain = build_collection(
        source, tmp_path / "c", BuildOptions(retriever="bm25", progress=False, cache_dir=None)
    )
    with pytest.raises(CollectionError, match="--multivector MODEL"):
        plain.search(QUERIES[0], 3, retriever="multivector")
    shown = densekit("search", tmp_path / "c", QUERIES[0], "--retriever", "multivector")
    assert shown.returncode == 2 and "--multivector MODEL" in shown.stderr
    assert "Traceback" not in shown.stderr


def test_the_multivector_retriever_needs_a_model(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--multivector MODEL"):
        BuildOptions(retriever="multivector")
