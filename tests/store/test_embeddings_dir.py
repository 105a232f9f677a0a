from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import HashingEncoder
from required import require

from densekit.errors import CollectionError, InputError
from densekit.files.encode_folder import load_embeddings
from densekit.store import BuildOptions
from densekit.store.embeddings_dir import encode_corpus

DOCS = [{"_id": f"d{i}", "text": f"text {i} " * (i + 1)} for i in range(5)]
OPTIONS = BuildOptions(retriever="dense", rows_per_shard=2, cache_dir=None, progress=False)


def corpus(tmp_path: Path, docs: list[dict] = DOCS) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def test_vectors_and_ids_come_back_in_corpus_order(tmp_path: Path) -> None:
    encoder = HashingEncoder()
    manifest = encode_corpus(corpus(tmp_path), tmp_path / "emb", OPTIONS, encoder=encoder)
    assert manifest["passages"] == 5 and manifest["shards"] == [
        "00000.npy",
        "00001.npy",
        "00002.npy",
    ]
    ids, vectors = load_embeddings(tmp_path / "emb")
    assert ids == [d["_id"] for d in DOCS]
    np.testing.assert_allclose(vectors, encoder.encode_documents([d["text"] for d in DOCS]))


def test_parquet_output_matches_the_shards(tmp_path: Path) -> None:
    pq = require("pyarrow.parquet")
    encode_corpus(
        corpus(tmp_path), tmp_path / "emb", OPTIONS, output="parquet", encoder=HashingEncoder()
    )
    table = pq.read_table(tmp_path / "emb" / "vectors.parquet")
    ids, vectors = load_embeddings(tmp_path / "emb")
    assert table.column("id").to_pylist() == ids
    np.testing.assert_allclose(np.array(table.column("vector").to_pylist()), vectors)


def test_finished_output_needs_overwrite_and_foreign_dirs_are_refused(tmp_path: Path) -> None:
    path = corpus(tmp_path)
    encode_corpus(path, tmp_path / "emb", OPTIONS, encoder=HashingEncoder())
    with pytest.raises(CollectionError, match="pass --overwrite"):
        encode_corpus(path, tmp_path / "emb", OPTIONS, encoder=HashingEncoder())
    encode_corpus(path, tmp_path / "emb", OPTIONS, overwrite=True, encoder=HashingEncoder())
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff")
    with pytest.raises(CollectionError, match="holds no densekit embeddings"):
        encode_corpus(path, tmp_path / "photos", OPTIONS, encoder=HashingEncoder())


def test_duplicate_ids_are_named(tmp_path: Path) -> None:
    path = corpus(tmp_path, [*DOCS, {"_id": "d1", "text": "again"}])
    with pytest.raises(InputError, match=r"corpus\.jsonl:6: duplicate document id 'd1'"):
        encode_corpus(path, tmp_path / "emb", OPTIONS, encoder=HashingEncoder())


def test_unfinished_directories_cannot_be_loaded(tmp_path: Path) -> None:
    (tmp_path / "emb").mkdir()
    with pytest.raises(CollectionError, match="unfinished"):
        load_embeddings(tmp_path / "emb")
