from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import HashingEncoder

from densekit.corpus import ChunkConfig
from densekit.errors import CollectionError, InputError, ModelMismatchError
from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions, StoredCollection

QUIET = BuildOptions(progress=False)


def build(corpus: Path, out: Path, encoder: HashingEncoder, **options) -> Collection:
    opts = BuildOptions(progress=False, **options)
    collection = build_collection(corpus, out, opts, overwrite=True, encoder=encoder)
    if collection.manifest.encoder is not None:
        collection = collection.with_encoder(encoder)
    return collection


def test_build_writes_manifest_documents_shards_and_bm25(corpus_file, tmp_path, hashing_encoder):
    collection = build(corpus_file, tmp_path / "c", hashing_encoder)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["documents"] == 5
    assert manifest["encoder"]["fingerprint"] == hashing_encoder.fingerprint
    assert manifest["encoder"]["dimension"] == 64
    assert manifest["retriever"] == "hybrid"
    assert collection.retrievers == ["dense", "bm25", "hybrid"]
    generation = tmp_path / "c" / manifest["generation"]
    assert (generation / "documents.sqlite").is_file()
    shard = np.load(generation / "embeddings" / "00000.npy")
    assert shard.shape == (5, 64) and shard.dtype == np.float32
    assert collection.doc_ids == ["d1", "d2", "d3", "d4", "d5"]
    assert collection.documents.get("d3").title == "Vitamin D"


def test_each_retriever_finds_the_obvious_document(corpus_file, tmp_path, hashing_encoder):
    collection = build(corpus_file, tmp_path / "c", hashing_encoder)
    for retriever in ("dense", "bm25", "hybrid"):
        hits = collection.search("salmon rivers", k=3, retriever=retriever)
        assert hits[0].id == "d4", retriever
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_bm25_only_collection_needs_no_model(corpus_file, tmp_path):
    collection = build_collection(
        corpus_file, tmp_path / "c", BuildOptions(retriever="bm25", progress=False)
    )
    assert collection.manifest.encoder is None
    assert collection.search("loyal dogs", k=1)[0].id == "d2"
    with pytest.raises(CollectionError, match="cannot search with 'dense'"):
        collection.search("dogs", retriever="dense")


def test_chunked_documents_are_scored_by_their_best_passage(tmp_path, hashing_encoder):
    long_text = " ".join(["filler"] * 40 + ["zebra", "stripes"] + ["filler"] * 40)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        json.dumps({"_id": "long", "text": long_text})
        + "\n"
        + json.dumps({"_id": "short", "text": "filler words only here"})
        + "\n"
    )
    collection = build(
        corpus, tmp_path / "c", hashing_encoder, retriever="dense", chunk=ChunkConfig(10, 2)
    )
    assert collection.manifest.dense.rows > 2
    assert collection.info()["passages"] == collection.manifest.dense.rows
    hits = collection.search("zebra stripes", k=2)
    assert [h.id for h in hits] == ["long", "short"]
    # The long document's score is that of its best window, not of the diluted whole.
    index = collection.dense_index
    query = hashing_encoder.encode_queries(["zebra stripes"])[0]
    passages = np.concatenate(index.shards)[index.passage_offsets[0] : index.passage_offsets[1]]
    assert hits[0].score == pytest.approx(float((passages @ query).max()))
    whole = hashing_encoder.encode_documents([long_text])[0]
    assert hits[0].score > float(whole @ query) + 0.1


def test_duplicate_ids_name_both_places(tmp_path, hashing_encoder):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        '{"_id": "a", "text": "x"}\n{"_id": "b", "text": "y"}\n{"_id": "a", "text": "z"}\n'
    )
    with pytest.raises(
        InputError,
        match=r"corpus\.jsonl:3: duplicate document id 'a' \(first seen at .*corpus\.jsonl:1\)",
    ):
        build_collection(corpus, tmp_path / "c", QUIET, encoder=hashing_encoder)
    assert not (tmp_path / "c" / "manifest.json").exists()
    assert not list((tmp_path / "c").glob("gen-*"))


def test_empty_corpus_is_refused(tmp_path, hashing_encoder):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "text": " "}\n')
    with pytest.raises(InputError, match="no documents to index"):
        build_collection(corpus, tmp_path / "c", QUIET, encoder=hashing_encoder)


def test_existing_output_needs_overwrite_and_unrelated_dirs_are_never_touched(
    corpus_file, tmp_path, hashing_encoder
):
    out = tmp_path / "c"
    build_collection(corpus_file, out, QUIET, encoder=hashing_encoder)
    with pytest.raises(CollectionError, match="pass --overwrite"):
        build_collection(corpus_file, out, QUIET, encoder=hashing_encoder)
    unrelated = tmp_path / "home"
    unrelated.mkdir()
    (unrelated / "thesis.tex").write_text("precious")
    with pytest.raises(CollectionError, match="not a densekit collection"):
        build_collection(corpus_file, unrelated, QUIET, overwrite=True, encoder=hashing_encoder)
    assert (unrelated / "thesis.tex").read_text() == "precious"


def test_overwrite_replaces_and_removes_the_old_generation(corpus_file, tmp_path, hashing_encoder):
    out = tmp_path / "c"
    first = build_collection(corpus_file, out, QUIET, encoder=hashing_encoder)
    second = build_collection(corpus_file, out, QUIET, overwrite=True, encoder=hashing_encoder)
    assert first.manifest.generation != second.manifest.generation
    assert [p.name for p in out.glob("gen-*")] == [second.manifest.generation]


def test_failed_rebuild_leaves_the_old_collection_intact(corpus_file, tmp_path, hashing_encoder):
    out = tmp_path / "c"
    build(corpus_file, out, hashing_encoder)
    before = (out / "manifest.json").read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "a", "text": "x"}\n{oops\n')
    with pytest.raises(InputError):
        build_collection(bad, out, QUIET, overwrite=True, encoder=hashing_encoder)
    assert (out / "manifest.json").read_text() == before
    reopened = Collection(out)
    reopened = reopened.with_encoder(hashing_encoder)
    assert reopened.search("salmon", k=1)[0].id == "d4"


def test_queries_from_another_model_are_refused(corpus_file, tmp_path, hashing_encoder):
    collection = build(corpus_file, tmp_path / "c", hashing_encoder)
    with pytest.raises(ModelMismatchError, match="was built with model 'hashing'"):
        collection = collection.with_encoder(HashingEncoder(salt="-other"))


def test_registry_models_are_located_afresh_when_reopened(corpus_file, tmp_path):
    from densekit.store.manifest import EncoderInfo

    info = EncoderInfo("minilm", "/gone/site-packages/model", "f" * 32, 384, 256)
    assert info.model_spec().location != "/gone/site-packages/model"
    custom = EncoderInfo("/models/mine", "/models/mine", "f" * 32, 384, 256)
    assert custom.model_spec().location == "/models/mine"


def test_chunks_longer_than_the_model_window_are_refused(corpus_file, tmp_path, hashing_encoder):
    options = BuildOptions(retriever="dense", chunk=ChunkConfig(1024, 0), progress=False)
    with pytest.raises(InputError, match="reads 510 tokens of a document"):
        build_collection(corpus_file, tmp_path / "c", options, encoder=hashing_encoder)
    assert not list((tmp_path / "c").glob("gen-*"))


def test_a_second_build_into_the_same_directory_waits_its_turn(corpus_file, tmp_path):
    import fcntl

    out = tmp_path / "c"
    out.mkdir()
    with (out / ".densekit.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a build in another process would
        with pytest.raises(CollectionError, match="another densekit write"):
            build_collection(corpus_file, out, BuildOptions(retriever="bm25", progress=False))
    build_collection(corpus_file, out, BuildOptions(retriever="bm25", progress=False))


def test_a_failed_first_build_leaves_no_directory_behind(tmp_path, hashing_encoder):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "a", "text": "x"}\n{oops\n')
    with pytest.raises(InputError):
        build_collection(bad, tmp_path / "new" / "c", QUIET, encoder=hashing_encoder)
    assert not (tmp_path / "new" / "c").exists()


def test_an_opened_collection_survives_being_replaced(corpus_file, tmp_path, hashing_encoder):
    out = tmp_path / "c"
    old = build(corpus_file, out, hashing_encoder)
    build_collection(corpus_file, out, QUIET, overwrite=True, encoder=hashing_encoder)
    assert old.search("salmon", k=1, retriever="hybrid")[0].id == "d4"


def test_chunking_a_bm25_only_build_is_refused():
    with pytest.raises(InputError, match="BM25 indexes whole documents"):
        BuildOptions(retriever="bm25", chunk=ChunkConfig(100, 10))


def test_the_splade_retriever_needs_a_sparse_model() -> None:
    with pytest.raises(InputError, match="--sparse splade-tiny"):
        BuildOptions(retriever="splade")
    assert BuildOptions(retriever="splade", sparse="splade-tiny").sparse == "splade-tiny"


def test_a_fusion_config_is_recorded_as_its_table(corpus_file, tmp_path, hashing_encoder):
    from densekit.retrieve import FusionConfig
    from densekit.store import build_collection as build_stored

    fusion = FusionConfig.hybrid(alpha=0.7)
    options = BuildOptions(progress=False, cache_dir=None, fusion=fusion)
    assert options.fusion == fusion.to_dict()
    with build_stored(corpus_file, tmp_path / "c", options, encoder=hashing_encoder) as stored:
        assert FusionConfig.stored(stored.manifest.fusion) == fusion


def test_a_fusion_that_is_no_table_is_refused_before_any_work() -> None:
    with pytest.raises(InputError, match="fusion must be"):
        BuildOptions(fusion=0.7)  # type: ignore[arg-type]


def test_an_unknown_fusion_is_refused_before_the_corpus_is_read(tmp_path, hashing_encoder):
    options = BuildOptions(progress=False, cache_dir=None, fusion={"method": "max"})
    with pytest.raises(InputError, match=r"fusion\.method: unknown 'max'"):
        build_collection(
            tmp_path / "missing.jsonl", tmp_path / "c", options, encoder=hashing_encoder
        )
    assert not (tmp_path / "c").exists()


def test_bm25_terms_follow_the_retriever_unless_given(corpus_file, tmp_path, hashing_encoder):
    from densekit.index.lexical import CLASSIC_TERMS, HYBRID_TERMS, TermWeights

    assert BuildOptions().lexical_terms() == HYBRID_TERMS
    assert BuildOptions(retriever="bm25").lexical_terms() == CLASSIC_TERMS
    given = BuildOptions(retriever="bm25", bm25_pair_weight=0.5).lexical_terms()
    assert given == TermWeights(exact=0.0, pairs=0.5)
    # Without a stemmer a word is its own exact form: only the pairs are added.
    assert BuildOptions(bm25_stemmer="none").lexical_terms() == TermWeights(0.0, HYBRID_TERMS.pairs)
    with pytest.raises(InputError, match="BM25 exact weight -1"):
        BuildOptions(bm25_exact_weight=-1)
    with pytest.raises(InputError, match="a dense collection has no BM25"):
        BuildOptions(retriever="dense", bm25_pair_weight=0.5)

    build(corpus_file, tmp_path / "c", hashing_encoder)
    manifest_path = tmp_path / "c" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert (manifest["lexical"]["exact_weight"], manifest["lexical"]["pair_weight"]) == (
        HYBRID_TERMS.exact,
        HYBRID_TERMS.pairs,
    )
    assert StoredCollection(tmp_path / "c").lexical_index.terms == HYBRID_TERMS
    # A manifest written before the weights existed reads as the classic BM25 it built.
    for key in ("exact_weight", "pair_weight"):
        del manifest["lexical"][key]
    manifest_path.write_text(json.dumps(manifest))
    assert StoredCollection(tmp_path / "c").lexical_index.terms == CLASSIC_TERMS
