"""Collections built on vectors made elsewhere (`densekit index --vectors`), searched with
query vectors made elsewhere, or with the model named for them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DOCUMENTS
from helpers import HashingEncoder

from densekit.cli.main import main
from densekit.errors import CollectionError, InputError
from densekit.evaluate import evaluate
from densekit.files.vectors import read_vectors
from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions

DOC_IDS = [d["_id"] for d in DOCUMENTS]
TEXTS = [f"{d['title']} {d['text']}" for d in DOCUMENTS]


def write_parquet(path: Path, ids: list[str], vectors: np.ndarray) -> Path:
    table = pa.table({"id": ids, "vector": [list(map(float, v)) for v in vectors]})
    pq.write_table(table, path)
    return path


@pytest.fixture
def document_vectors() -> np.ndarray:
    return HashingEncoder().encode_documents(TEXTS)


def build_given(corpus: Path, out: Path, vectors: str | Path, **options) -> Collection:
    opts = BuildOptions(progress=False, cache_dir=None, vectors=str(vectors), **options)
    return build_collection(corpus, out, opts, overwrite=True)


def test_npy_in_corpus_order_gives_the_same_search_as_encoding(
    corpus_file, tmp_path, document_vectors, tiny_beir
):
    np.save(tmp_path / "docs.npy", document_vectors * 3.0)  # stored unit-length anyway
    given = build_given(corpus_file, tmp_path / "given", tmp_path / "docs.npy")
    assert given.manifest.encoder.backend == "precomputed"
    stored = np.concatenate([np.asarray(s) for s in given.dense_vectors()[0].shards])
    np.testing.assert_allclose(stored, document_vectors, atol=1e-6)
    with pytest.raises(CollectionError, match="--query-vectors"):
        given.search("vitamin D")

    queries = {"q1": "vitamin D and bones", "q2": "loyal dogs"}
    query_file = write_parquet(
        tmp_path / "queries.parquet",
        list(queries),
        HashingEncoder().encode_queries(list(queries.values())),
    )
    report = evaluate(
        tiny_beir, collection=tmp_path / "given", retriever="dense", query_vectors=query_file
    )
    encoded = build_collection(
        corpus_file,
        tmp_path / "encoded",
        BuildOptions(progress=False, cache_dir=None),
        encoder=HashingEncoder(),
    )
    encoded = encoded.with_encoder(HashingEncoder())
    expected = evaluate(tiny_beir, collection=encoded, retriever="dense")
    for query, ranking in expected.run.items():  # the same ranking, scores to float precision
        assert [d for d, _ in report.run[query]] == [d for d, _ in ranking]
        np.testing.assert_allclose(
            [s for _, s in report.run[query]], [s for _, s in ranking], atol=1e-6
        )
    assert report.metrics == expected.metrics


def test_parquet_with_ids_in_any_order_and_a_named_model(corpus_file, tmp_path, document_vectors):
    order = [3, 0, 4, 1, 2]
    path = write_parquet(
        tmp_path / "docs.parquet", [DOC_IDS[i] for i in order], document_vectors[order]
    )
    collection = build_collection(
        corpus_file,
        tmp_path / "c",
        BuildOptions(progress=False, cache_dir=None, vectors=str(path), vectors_model="x"),
        overwrite=True,
        encoder=HashingEncoder(),  # stands for the model named by --vectors-model
    )
    assert collection.manifest.encoder.fingerprint == HashingEncoder().fingerprint
    stored = np.concatenate([np.asarray(s) for s in collection.dense_vectors()[0].shards])
    np.testing.assert_allclose(stored, document_vectors, atol=1e-6)
    collection = collection.with_encoder(HashingEncoder())
    assert collection.search("salmon rivers", k=1, retriever="dense")[0].id == "d4"


def test_npy_with_an_ids_file(corpus_file, tmp_path, document_vectors):
    np.save(tmp_path / "docs.npy", document_vectors[::-1].copy())
    (tmp_path / "ids.txt").write_text("\n".join(DOC_IDS[::-1]) + "\n")
    collection = build_collection(
        corpus_file,
        tmp_path / "c",
        BuildOptions(
            progress=False,
            cache_dir=None,
            vectors=str(tmp_path / "docs.npy"),
            vector_ids=str(tmp_path / "ids.txt"),
        ),
    )
    stored = np.concatenate([np.asarray(s) for s in collection.dense_vectors()[0].shards])
    np.testing.assert_allclose(stored, document_vectors, atol=1e-6)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda ids, v: (ids[:-1], v[:-1]), "no vector for 1 of 5 documents .*'d5'"),
        (lambda ids, v: ([*ids, "x9"], np.vstack([v, v[:1]])), "ids that are not documents.*x9"),
        (lambda ids, v: ([*ids[:4], "d1"], v), "id 'd1' appears twice"),
        (lambda ids, v: (ids, np.where(np.arange(5)[:, None] == 2, np.nan, v)), "row 2.*'d3'.*NaN"),
        (lambda ids, v: (ids, np.where(np.arange(5)[:, None] == 1, 0.0, v)), "row 1 is all zeros"),
    ],
)
def test_bad_vector_files_are_refused_before_anything_is_written(
    corpus_file, tmp_path, document_vectors, mutate, message
):
    ids, vectors = mutate(list(DOC_IDS), document_vectors)
    path = write_parquet(tmp_path / "docs.parquet", ids, vectors)
    with pytest.raises(InputError, match=message):
        build_given(corpus_file, tmp_path / "c", path)
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_an_existing_collection_survives_a_bad_rebuild(corpus_file, tmp_path, document_vectors):
    np.save(tmp_path / "docs.npy", document_vectors)
    build_given(corpus_file, tmp_path / "c", tmp_path / "docs.npy")
    before = (tmp_path / "c" / "manifest.json").read_text()
    np.save(tmp_path / "short.npy", document_vectors[:3])
    with pytest.raises(InputError, match="3 vectors for 5 documents"):
        build_given(corpus_file, tmp_path / "c", tmp_path / "short.npy")
    assert (tmp_path / "c" / "manifest.json").read_text() == before
    assert len(Collection(tmp_path / "c")) == 5


def test_vector_file_formats_and_their_errors(tmp_path, document_vectors):
    with pytest.raises(InputError, match="no such vectors file"):
        read_vectors(tmp_path / "none.npy")
    (tmp_path / "v.csv").write_text("1,2\n")
    with pytest.raises(InputError, match="unknown vectors format"):
        read_vectors(tmp_path / "v.csv")
    np.save(tmp_path / "flat.npy", np.ones(4, dtype=np.float32))
    with pytest.raises(InputError, match="2-D array"):
        read_vectors(tmp_path / "flat.npy")
    np.save(tmp_path / "ints.npy", np.ones((2, 3), dtype=np.int64))
    with pytest.raises(InputError, match="floating-point"):
        read_vectors(tmp_path / "ints.npy")
    np.save(tmp_path / "ok.npy", document_vectors)
    (tmp_path / "ids.json").write_text(json.dumps(["a", "b"]))
    with pytest.raises(InputError, match="2 ids for 5 vectors"):
        read_vectors(tmp_path / "ok.npy", tmp_path / "ids.json")
    (tmp_path / "ids.txt").write_text("a\n\nb\n")
    with pytest.raises(InputError, match=r"ids.txt:2: empty id"):
        read_vectors(tmp_path / "ok.npy", tmp_path / "ids.txt")
    pq.write_table(pa.table({"name": ["a"], "values": [[1.0]]}), tmp_path / "cols.parquet")
    with pytest.raises(InputError, match="expected an id column"):
        read_vectors(tmp_path / "cols.parquet")
    ragged = pa.table({"id": ["a", "b"], "embedding": [[1.0, 0.0], [1.0]]})
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    with pytest.raises(InputError, match=r"row 1 .*'b'.* another length"):
        read_vectors(tmp_path / "ragged.parquet")
    empty = pa.table(
        {"id": pa.array([], pa.string()), "vector": pa.array([], pa.list_(pa.float32()))}
    )
    pq.write_table(empty, tmp_path / "empty.parquet")
    with pytest.raises(InputError, match="no rows"):
        read_vectors(tmp_path / "empty.parquet")


def test_query_vectors_of_the_wrong_width_or_missing_queries(
    corpus_file, tmp_path, document_vectors, tiny_beir
):
    np.save(tmp_path / "docs.npy", document_vectors)
    build_given(corpus_file, tmp_path / "c", tmp_path / "docs.npy")
    narrow = write_parquet(tmp_path / "narrow.parquet", ["q1", "q2"], np.ones((2, 8)))
    with pytest.raises(InputError, match="8 dimensions, but the collection has 64"):
        evaluate(tiny_beir, collection=tmp_path / "c", retriever="dense", query_vectors=narrow)
    only_one = write_parquet(
        tmp_path / "one.parquet", ["q1"], HashingEncoder().encode_queries(["vitamin D"])
    )
    with pytest.raises(InputError, match=r"no vector for 1 of 2 queries .*'q2'"):
        evaluate(tiny_beir, collection=tmp_path / "c", retriever="dense", query_vectors=only_one)
    with pytest.raises(InputError, match="not both"):
        evaluate(tiny_beir, collection=tmp_path / "c", model="minilm", query_vectors=only_one)


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def test_cli_index_search_and_eval_with_vectors(
    capsys, corpus_file, tmp_path, document_vectors, tiny_beir
):
    np.save(tmp_path / "docs.npy", document_vectors)
    out = tmp_path / "c"
    assert (
        cli("index", corpus_file, "--out", out, "--vectors", tmp_path / "docs.npy", "--quiet") == 0
    )
    queries = write_parquet(
        tmp_path / "q.parquet",
        ["q1", "q2"],
        HashingEncoder().encode_queries(["vitamin D and bones", "loyal dogs"]),
    )
    capsys.readouterr()
    dense = ("--retriever", "dense", "--query-vectors", queries)
    assert cli("search", out, "q2", *dense, "-k", "1") == 0
    assert "d2" in capsys.readouterr().out
    assert cli("eval", tiny_beir, "--collection", out, *dense) == 0
    assert "nDCG@10" in capsys.readouterr().out
    assert cli("search", out, "vitamin") == 2
    assert "--query-vectors" in capsys.readouterr().err
    assert cli("search", out, "q2", "--query-vectors", queries, "--retriever", "bm25") == 2
    assert "its id, not text" in capsys.readouterr().err
    more = tmp_path / "more.jsonl"
    more.write_text('{"_id": "d9", "text": "new"}\n')
    assert cli("add", out, more, "--quiet") == 2
    assert "rebuilding with their vectors" in capsys.readouterr().err
    assert len(Collection(out)) == 5
    bm25 = ("--vectors", tmp_path / "docs.npy", "--retriever", "bm25")
    assert cli("index", corpus_file, "--out", tmp_path / "b", *bm25) == 2
    assert "dense vectors" in capsys.readouterr().err
