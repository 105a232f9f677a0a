"""Adding, updating and deleting documents of a built collection: results equal a fresh build,
every change is atomic, readers keep their snapshot, and bad changes are refused untouched."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import write_jsonl
from helpers import QUERIES, HashingEncoder, kill_once_writing, make_documents, write_corpus
from required import require

from densekit.corpus import Document
from densekit.errors import CollectionError, InputError, ModelMismatchError
from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions, change_writer, compact_collection, update_collection
from densekit.store import changes as changes_module


def build(
    tmp_path: Path, name: str, documents: list[Document], index: str = "flat", **options
) -> Collection:
    source = write_corpus(tmp_path / f"{name}.jsonl", documents)
    built = build_collection(
        source,
        tmp_path / name,
        BuildOptions(progress=False, cache_dir=None, index=index, **options),
        encoder=HashingEncoder(),
    )
    if built.manifest.encoder is not None:
        built = built.with_encoder(HashingEncoder())
    return built


def opened(directory: Path) -> Collection:
    collection = Collection(directory)
    if collection.manifest.encoder is not None:
        collection = collection.with_encoder(HashingEncoder())
    return collection


def results(collection: Collection, retriever: str) -> list[dict[str, float]]:
    """Every query's full ranking as id -> score (ties make the order arbitrary)."""
    return [
        {hit.id: round(hit.score, 5) for hit in hits}
        for hits in collection.search_many(QUERIES, len(collection), retriever=retriever)
    ]


def change(directory: Path, **kwargs) -> changes_module.ChangeReport:
    return update_collection(directory, encoder=HashingEncoder(), cache=False, **kwargs)


def test_changed_collection_searches_like_a_fresh_build_of_its_documents(tmp_path: Path) -> None:
    base = make_documents(0, 120)
    original = build(tmp_path, "changed", base)
    replacements = [Document("d5", "salmon river vitamin w1 w2"), Document("d7", "cat dog")]
    additions = make_documents(500, 30)
    report = change(
        tmp_path / "changed", add=additions, update=replacements, delete=["d1", "d2", "d3"]
    )
    assert (report.added, report.updated, report.deleted) == (30, 2, 3)
    assert report.documents == 120 - 3 + 30 and report.tombstones == 5

    replaced = {d.id: d for d in replacements}
    expected = [replaced.get(d.id, d) for d in base if d.id not in {"d1", "d2", "d3"}]
    fresh = build(tmp_path, "fresh", [*expected, *additions])
    changed = opened(tmp_path / "changed")
    assert len(changed) == len(fresh) == 147
    assert sorted(changed.doc_ids) == sorted(fresh.doc_ids)
    for retriever in ("dense", "bm25", "hybrid"):
        assert results(changed, retriever) == results(fresh, retriever), retriever
    assert changed.documents.get("d5") is not None
    assert changed.documents.get("d5").text == "salmon river vitamin w1 w2"
    assert changed.documents.get("d1") is None
    assert original.documents.get("d1") is not None  # the snapshot opened before

    compact_collection(tmp_path / "changed")
    compacted = opened(tmp_path / "changed")
    assert compacted.manifest.deleted == 0 and len(compacted) == 147
    for retriever in ("dense", "bm25", "hybrid"):
        assert results(compacted, retriever) == results(fresh, retriever), retriever
    generations = sorted(p.name for p in (tmp_path / "changed").glob("gen-*"))
    assert generations == [compacted.manifest.generation]


@pytest.mark.parametrize(
    "spec",
    ["HNSW16(efSearch=64)", "IVF4,Flat(nprobe=4)", "int8+rescore*4", "PQ8+rescore*8", "binary"],
)
def test_approximate_indexes_take_additions_without_retraining(tmp_path: Path, spec: str) -> None:
    import faiss

    base = make_documents(0, 300)
    build(tmp_path, "c", base, index=spec, retriever="dense")
    before = json.loads((tmp_path / "c" / "manifest.json").read_text())["dense"]
    before_index = (tmp_path / "c" / before["index_file"]).read_bytes()
    deleted = [f"d{i}" for i in range(0, 300, 3)]
    change(tmp_path / "c", add=[Document("new", "zebra giraffe okapi")], delete=deleted)
    after = opened(tmp_path / "c")
    assert after.manifest.dense.index_file != before["index_file"]
    assert after.dense_index.rows == 301

    # Trained parts (IVF centroids, PQ codebooks) are the ones of the first build.
    def trained_state(path: Path) -> bytes:
        reader = faiss.read_index_binary if spec == "binary" else faiss.read_index
        index = reader(str(path))
        if spec.startswith("IVF"):
            ivf = faiss.extract_index_ivf(index)
            return ivf.quantizer.reconstruct_n(0, ivf.nlist).tobytes()
        if spec.startswith("PQ"):
            return faiss.vector_to_array(index.pq.centroids).tobytes()
        return b""

    first = tmp_path / "first.faiss"
    first.write_bytes(before_index)
    assert trained_state(first) == trained_state(tmp_path / "c" / after.manifest.dense.index_file)
    assert after.search("zebra giraffe okapi", 1)[0].id == "new"
    for hits in after.search_many(QUERIES, 50):
        assert len(hits) == 50
        assert not {hit.id for hit in hits} & set(deleted)


def test_chunked_collection_extends_its_passage_offsets(tmp_path: Path) -> None:
    from densekit.corpus import ChunkConfig

    base = make_documents(0, 40)
    build(tmp_path, "c", base, retriever="dense", chunk=ChunkConfig(8, 2))
    long_text = " ".join(["alpha"] * 10 + ["okapi zebra giraffe"] * 4 + ["beta"] * 10)
    change(tmp_path / "c", add=[Document("long", long_text)], delete=["d0"])
    changed = opened(tmp_path / "c")
    offsets = np.load(tmp_path / "c" / changed.manifest.dense.passage_offsets)
    assert len(offsets) == 42 and offsets[-1] == changed.manifest.dense.rows
    assert offsets[-1] - offsets[-2] >= 3  # the new document's windows
    assert changed.search("okapi zebra giraffe", 1)[0].id == "long"
    assert "d0" not in {hit.id for hit in changed.search("doc 0", 41)}
    compact_collection(tmp_path / "c")
    compacted = opened(tmp_path / "c")
    assert compacted.search("okapi zebra giraffe", 1)[0].id == "long"
    assert len(compacted) == 40 and compacted.manifest.dense.rows == offsets[-1] - (
        offsets[1] - offsets[0]
    )


def test_bm25_only_collections_change_too(tmp_path: Path) -> None:
    build(tmp_path, "c", make_documents(0, 20), retriever="bm25")
    change(tmp_path / "c", upsert=[Document("d4", "okapi"), Document("x", "giraffe okapi")])
    changed = Collection(tmp_path / "c")
    assert [hit.id for hit in changed.search("okapi", 5)] == ["d4", "x"]
    assert len(changed) == 21


def test_upsert_adds_new_and_replaces_existing(tmp_path: Path) -> None:
    build(tmp_path, "c", make_documents(0, 10))
    report = change(tmp_path / "c", upsert=[Document("d1", "zebra"), Document("z", "okapi")])
    assert (report.added, report.updated) == (1, 1)
    changed = opened(tmp_path / "c")
    assert changed.documents.get("d1").text == "zebra" and len(changed) == 11


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delete": ["d1", "nope", "gone"]}, "cannot delete 2 unknown document id(s): 'nope'"),
        ({"add": [Document("d3", "again", source="new.jsonl:4")]}, "new.jsonl:4: document 'd3'"),
        (
            {"add": [Document("x", "a", source="f:1"), Document("x", "b", source="f:2")]},
            "f:2: duplicate document id 'x' in one change (first at f:1)",
        ),
        ({"update": [Document("nope", "text")]}, "cannot update document 'nope'"),
        ({"update": [Document("d1", "x")], "delete": ["d1"]}, "both deleted and written"),
        ({"add": [Document("e", "  ")]}, "document 'e' is empty"),
        ({}, "no documents to add, update or delete"),
        ({"add": [Document("", "text")]}, "id '' is empty"),
        ({"add": [Document(7, "text")]}, "id 7 is a number, not a string"),
        ({"add": [Document("a\tb", "text", source="f:3")]}, "f:3: id 'a\\tb' holds a control"),
        ({"delete": ["caf\udce9"]}, "delete[0]: id 'caf\\udce9' holds a lone surrogate"),
        ({"add": [Document("x", None)]}, "text is NoneType, not a string"),
        ({"add": Document("x", "text")}, "wrap the single one in a list"),
        ({"add": ["text"]}, "add[0]: a str is not a document"),
        ({"delete": "d1"}, "wrap 'd1' in a list"),
        ({"delete": ["d1", 1]}, "delete[1]: id 1 is a number, not a string"),
        ({"delete": ["d1"], "compact_above": 1.5}, "compact_above is a share"),
        ({"delete": [f"d{i}" for i in range(10)]}, "would delete every document"),
    ],
)
def test_bad_changes_are_refused_and_nothing_is_written(
    tmp_path: Path, kwargs: dict, message: str
) -> None:
    build(tmp_path, "c", make_documents(0, 10))
    manifest = (tmp_path / "c" / "manifest.json").read_text()
    generations = sorted((tmp_path / "c").glob("gen-*"))
    with pytest.raises(InputError) as error:
        change(tmp_path / "c", **kwargs)
    assert message in str(error.value)
    assert (tmp_path / "c" / "manifest.json").read_text() == manifest
    assert sorted((tmp_path / "c").glob("gen-*")) == generations


def test_another_model_or_a_missing_collection_is_refused(tmp_path: Path) -> None:
    build(tmp_path, "c", make_documents(0, 10))
    with pytest.raises(ModelMismatchError):
        update_collection(
            tmp_path / "c", add=[Document("x", "text")], encoder=HashingEncoder(salt="other")
        )
    with pytest.raises(CollectionError, match="no such collection"):
        change(tmp_path / "missing", delete=["d1"])


@pytest.mark.parametrize("failure", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_a_change_that_fails_midway_leaves_the_collection_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    build(tmp_path, "c", make_documents(0, 30))
    before = results(opened(tmp_path / "c"), "hybrid")
    generations = sorted((tmp_path / "c").glob("gen-*"))

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(change_writer, "index_lexical", fail)  # after vectors were written
    with pytest.raises(type(failure)):
        change(tmp_path / "c", add=make_documents(100, 5), delete=["d1"])
    assert sorted((tmp_path / "c").glob("gen-*")) == generations
    assert results(opened(tmp_path / "c"), "hybrid") == before


def test_concurrent_writers_are_refused(tmp_path: Path) -> None:
    from densekit.store import layout

    build(tmp_path, "c", make_documents(0, 10))
    with (
        layout.directory_lock(tmp_path / "c"),
        pytest.raises(CollectionError, match="another densekit write"),
    ):
        change(tmp_path / "c", delete=["d1"])


def test_readers_keep_their_snapshot_through_changes_and_compaction(tmp_path: Path) -> None:
    reader = build(tmp_path, "c", make_documents(0, 50))
    before = results(reader, "hybrid")
    change(tmp_path / "c", delete=[f"d{i}" for i in range(25)], add=make_documents(100, 10))
    compact_collection(tmp_path / "c")  # removes the generation the reader opened
    assert results(reader, "hybrid") == before
    assert len(reader) == 50 and reader.documents.get("d0") is not None
    assert len(opened(tmp_path / "c")) == 35


def test_searches_during_a_stream_of_changes_never_fail(tmp_path: Path) -> None:
    build(tmp_path, "c", make_documents(0, 40))
    errors: list[BaseException] = []
    done = threading.Event()

    def search_until_done() -> None:
        while not done.is_set():
            try:
                collection = opened(tmp_path / "c")
                hits = collection.search("vitamin bone", 5)
                assert len(hits) == 5
                assert len(collection.doc_ids) == len(collection)
                collection.close()
            except BaseException as exc:  # reported below
                errors.append(exc)
                return

    reader = threading.Thread(target=search_until_done)
    reader.start()
    try:
        for step in range(8):
            change(tmp_path / "c", add=make_documents(1000 + 10 * step, 3), delete=[f"d{step}"])
            if step % 3 == 2:
                compact_collection(tmp_path / "c")
    finally:
        done.set()
        reader.join()
    assert not errors, errors[0]
    final = opened(tmp_path / "c")
    assert len(final) == 40 + 8 * 3 - 8
    assert len(set(final.doc_ids)) == len(final)


def test_compact_above_compacts_after_the_change(tmp_path: Path) -> None:
    build(tmp_path, "c", make_documents(0, 10))
    report = change(tmp_path / "c", delete=["d1", "d2"], compact_above=0.5)
    assert not report.compacted and report.tombstones == 2
    report = change(tmp_path / "c", delete=["d3", "d4", "d5", "d6"], compact_above=0.5)
    assert report.compacted and report.tombstones == 0
    assert opened(tmp_path / "c").manifest.deleted == 0


def test_rebuilding_over_a_changed_collection_keeps_it_intact_until_published(
    tmp_path: Path,
) -> None:
    documents = make_documents(0, 20)
    build(tmp_path, "c", documents)
    change(tmp_path / "c", add=make_documents(100, 2))
    # The rebuild reads the same corpus with the same settings as the first build, whose
    # generation the changed collection still shares: it must start afresh, not resume there.
    rebuilt = build_collection(
        tmp_path / "c.jsonl",
        tmp_path / "c",
        BuildOptions(progress=False, cache_dir=None),
        overwrite=True,
        encoder=HashingEncoder(),
    )
    assert len(rebuilt) == 20
    assert len(list((tmp_path / "c").glob("gen-*"))) == 1


@pytest.mark.slow
def test_kill_9_mid_change_keeps_the_published_collection(tmp_path: Path) -> None:
    build(tmp_path, "c", make_documents(0, 20), retriever="bm25")
    before = (tmp_path / "c" / "manifest.json").read_bytes()
    big = write_jsonl(
        tmp_path / "big.jsonl",
        [{"_id": f"n{i}", "text": f"new text {i} w{i % 97}"} for i in range(300_000)],
    )
    kill_once_writing(["add", tmp_path / "c", big, "--quiet"], tmp_path / "c", after=0.3)
    assert (tmp_path / "c" / "manifest.json").read_bytes() == before
    assert len(Collection(tmp_path / "c")) == 20
    # The next change clears the killed one's leftovers.
    change(tmp_path / "c", delete=["d1"])
    assert len(list((tmp_path / "c").glob("gen-*"))) == 1  # BM25 only: nothing shared
    assert len(Collection(tmp_path / "c")) == 19


def test_compaction_keeps_the_training_when_too_few_vectors_are_left(tmp_path: Path) -> None:
    build(tmp_path, "c", make_documents(0, 300), index="PQ8+rescore*8", retriever="dense")
    deleted = [f"d{i}" for i in range(200)]
    report = change(tmp_path / "c", delete=deleted, compact_above=0.3)  # 100 left: PQ8 needs 256
    assert report.compacted and report.documents == 100
    compacted = opened(tmp_path / "c")
    assert compacted.dense_index.rows == 100
    hits = compacted.search("vitamin bone", 100)
    assert len(hits) == 100 and not {hit.id for hit in hits} & set(deleted)


def test_an_older_snapshot_keeps_its_vectors(tmp_path: Path) -> None:
    reader = build(tmp_path, "c", make_documents(0, 30), retriever="dense")
    change(tmp_path / "c", delete=["d1"])
    compact_collection(tmp_path / "c")
    vectors, groups = reader.dense_vectors()
    assert vectors.rows == 30 and groups.deleted is None


def test_sparse_indexes_follow_changes_and_compaction(tmp_path: Path) -> None:
    require("cognition")
    base = make_documents(0, 30)
    build(tmp_path, "c", base, sparse="splade-tiny")
    added = [Document("new", "zebra giraffe okapi savanna")]
    change(tmp_path / "c", add=added, delete=["d1", "d2"])
    fresh = build(
        tmp_path,
        "fresh",
        [d for d in base if d.id not in {"d1", "d2"}] + added,
        sparse="splade-tiny",
    )
    changed = opened(tmp_path / "c")
    assert "splade" in changed.retrievers
    assert results(changed, "splade") == results(fresh, "splade")
    compact_collection(tmp_path / "c")
    assert results(opened(tmp_path / "c"), "splade") == results(fresh, "splade")
