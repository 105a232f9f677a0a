"""Collections built and changed from documents in memory, as a notebook user gives them."""

from __future__ import annotations

from pathlib import Path

import pytest
from required import require

import densekit
from densekit import Document
from densekit.errors import InputError

BM25 = densekit.BuildOptions(retriever="bm25", progress=False)
RECORDS = [
    {"id": "d1", "title": "Cats", "text": "The cat sat on the mat.", "year": 2021},
    {"id": "d2", "title": "Dogs", "text": "Dogs are loyal animals.", "year": 2019},
    {"id": "d3", "text": "Salmon swim upstream to spawn.", "topic": "fish"},
]


def stored(collection: densekit.Collection) -> dict[str, Document]:
    store = collection.documents
    rows = store.rows_of(["d1", "d2", "d3"])
    return {doc.id: doc for doc in store.get_rows(sorted(rows.values()))}


def top_id(collection: densekit.Collection, query: str) -> str:
    return collection.search(query, k=1)[0].id


@pytest.mark.parametrize("given", ["documents", "dicts", "generator", "dataframe", "dataset"])
def test_a_collection_builds_from_documents_in_memory(tmp_path: Path, given: str) -> None:
    source: object
    if given == "documents":
        source = [Document(r["id"], r["text"], r.get("title", "")) for r in RECORDS]
    elif given == "dicts":
        source = RECORDS
    elif given == "generator":
        source = (dict(record) for record in RECORDS)  # streamed once
    elif given == "dataframe":
        source = require("pandas").DataFrame(RECORDS)  # d3's title and year are NaN
    else:
        source = require("datasets").Dataset.from_list(RECORDS)
    collection = densekit.build_collection(source, tmp_path / given, BM25)
    assert collection.info()["documents"] == 3
    assert top_id(collection, "salmon spawning") == "d3"
    documents = stored(collection)
    assert documents["d1"].title == "Cats" and documents["d3"].title == ""
    if given != "documents":
        assert documents["d1"].metadata["year"] == 2021
        assert "year" not in documents["d3"].metadata  # a missing cell is no metadata


def test_changes_take_dicts_and_dataframes(tmp_path: Path) -> None:
    pandas = require("pandas")
    directory = tmp_path / "docs"
    densekit.build_collection(RECORDS[:2], directory, BM25)
    densekit.update_collection(directory, add=[RECORDS[2]])
    frame = pandas.DataFrame([{"id": "d1", "text": "Kittens purr on warm laps."}])
    densekit.update_collection(directory, update=frame)
    with densekit.open_collection(directory) as collection:
        assert collection.info()["documents"] == 3
        assert top_id(collection, "kittens purr") == "d1"
        assert top_id(collection, "salmon") == "d3"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ([Document("d1", "text"), {"id": "d2", "text": "t"}], r"documents\[1\]: a dict among"),
        ([{"id": "d1", "text": "t"}, Document("d2", "t")], r"documents\[1\]: a Document among"),
        (["just a string"], r"documents\[0\]: a str is not a document"),
        ({"id": "d1", "text": "t"}, "expected documents .* got dict"),
        ([{"text": "no id"}], r"documents\[0\]: no id field .* found text"),
        ([{"id": "d1", "text": 5}], r"documents\[0\]: field 'text' of document 'd1' is a int"),
    ],
)
def test_bad_documents_are_named_by_their_place(tmp_path: Path, source, message: str) -> None:
    with pytest.raises(InputError, match=message):
        densekit.build_collection(source, tmp_path / "out", BM25)
    assert not (tmp_path / "out").exists()  # nothing half-built is left


def test_a_dataframe_without_an_id_column_lists_its_columns(tmp_path: Path) -> None:
    frame = require("pandas").DataFrame([{"key": "d1", "body": "text"}])
    with pytest.raises(InputError, match=r"DataFrame \(columns\): no id field .* found key, body"):
        densekit.build_collection(frame, tmp_path / "out", BM25)
    fields = densekit.BuildOptions(retriever="bm25", progress=False, fields=_fields("key"))
    collection = densekit.build_collection(frame, tmp_path / "named", fields)
    assert collection.info()["documents"] == 1


def _fields(id_field: str):
    from densekit.corpus import FieldNames

    return FieldNames(id=id_field)


def test_metadata_from_a_dataframe_is_json_and_a_none_item_is_refused(tmp_path: Path) -> None:
    pandas = require("pandas")
    frame = pandas.DataFrame(
        [{"id": "d1", "text": "Dated text.", "when": pandas.Timestamp("2024-05-01"), "n": 3}]
    )
    from densekit.corpus.in_memory import documents_from

    (document,) = documents_from(frame)
    assert document.metadata == {"when": "2024-05-01T00:00:00", "n": 3}
    with pytest.raises(InputError, match=r"documents\[0\]: a NoneType is not a document"):
        densekit.build_collection([None, RECORDS[0]], tmp_path / "out", BM25)


def test_a_sharded_build_from_memory_is_refused_with_what_to_do(tmp_path: Path) -> None:
    from densekit.store.sharded_build import build_sharded

    with pytest.raises(InputError, match="write the documents to JSONL first"):
        build_sharded(RECORDS, tmp_path / "out", BM25, shards=2)
