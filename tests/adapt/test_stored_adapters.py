"""Adapters stored in collections: trained on the collection's own vectors, attached by one
manifest rename, applied by every search (query side, and documents through an exact index
when the adapter maps them), kept by changes and compactions, dropped by a rebuild."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_jsonl
from helpers import HashingEncoder

from densekit.adapt import (
    AdapterSpec,
    AdapterTraining,
    ResidualAdapter,
    load_adapter,
    save_adapter,
    train_adapter,
)
from densekit.adapt.on_collection import AdaptOptions, adapt_collection, training_set
from densekit.corpus import ChunkConfig, Document
from densekit.encode.adapters.applied import AppliedAdapter
from densekit.encode.adapters.lexsem import LexSemBridge, LexSemSpec
from densekit.encode.adapters.query_tokens import load_tokenizer, read_query_tokens, tokenizer_of
from densekit.errors import CollectionError, InputError
from densekit.evaluate.beir import load_beir
from densekit.index import FlatIndex
from densekit.retrieve import Collection, build_collection
from densekit.retrieve.retrievers import REFERENCE_DOCUMENTS, open_retriever
from densekit.store import BuildOptions, compact_collection, update_collection
from densekit.store.adapters import attach_adapter, detach_adapter
from densekit.store.layout import ADAPTERS_DIR
from densekit.store.manifest import AdapterInfo, read_manifest, write_manifest

TOPICS = 24
FAST = AdapterTraining(epochs=15, batch=16, learning_rate=3e-2)


# Tiny maps: one torch thread is fastest, and spares a busy machine.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def alias_dataset(root: Path, seed: int = 0) -> Path:
    """Documents say ``termN``; their queries say ``aliasN`` for the same N. The hashing
    encoder puts the two words in unrelated buckets, so dense retrieval misses; a query map
    learned on the train split moves each alias to its term, and the test split (other word
    pairs of the same documents) shows whether it generalises."""
    rng = np.random.default_rng(seed)
    (root / "qrels").mkdir(parents=True)
    documents, queries, splits = [], [], {"train": [], "test": []}
    for i in range(60):
        words = rng.choice(TOPICS, size=3, replace=False)
        documents.append({"_id": f"d{i}", "title": "", "text": " ".join(f"term{w}" for w in words)})
        for split in splits:
            picked = rng.choice(words, size=2, replace=False)
            queries.append({"_id": f"{split}{i}", "text": " ".join(f"alias{w}" for w in picked)})
            splits[split].append((f"{split}{i}", f"d{i}"))
    write_jsonl(root / "corpus.jsonl", documents)
    write_jsonl(root / "queries.jsonl", queries)
    for split, pairs in splits.items():
        lines = "".join(f"{q}\t{d}\t1\n" for q, d in pairs)
        (root / "qrels" / f"{split}.tsv").write_text(f"query-id\tcorpus-id\tscore\n{lines}")
    return root


def build(corpus: Path, out: Path, **options) -> Collection:
    defaults = {"progress": False, "cache_dir": None, "retriever": "dense"}
    built = build_collection(
        corpus, out, BuildOptions(**(defaults | options)), encoder=HashingEncoder()
    )
    built.close()
    return opened(out)


def opened(directory: Path) -> Collection:
    collection = Collection(directory)
    collection = collection.with_encoder(HashingEncoder())
    return collection


def rankings(directory: Path, queries: list[str], k: int = 10, **search) -> list[list[tuple]]:
    """Every query's top ``k`` as (id, score), from a freshly opened snapshot."""
    with opened(directory) as collection:
        found = collection.search_many(queries, k, **search)
    return [[(hit.id, hit.score) for hit in hits] for hits in found]


def recall(directory: Path, dataset: Path, split: str = "test", k: int = 3) -> float:
    data = load_beir(dataset, split)
    names = list(data.qrels)
    found = rankings(directory, [data.queries[q] for q in names], k)
    return float(
        np.mean(
            [any(i in data.qrels[q] for i, _ in hits) for q, hits in zip(names, found, strict=True)]
        )
    )


def same_rankings(a: list[list[tuple]], b: list[list[tuple]]) -> bool:
    return [[i for i, _ in r] for r in a] == [[i for i, _ in r] for r in b] and all(
        np.allclose([s for _, s in x], [s for _, s in y], atol=1e-6)
        for x, y in zip(a, b, strict=True)
    )


def adapter_folders(directory: Path) -> list[str]:
    root = directory / ADAPTERS_DIR
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def trained_residual(collection: Collection, dataset: Path, spec: AdapterSpec) -> ResidualAdapter:
    data = training_set(dataset, collection, "train")
    adapter, _ = train_adapter(data.query_vectors, data.pairs, data.document_vectors, spec, FAST)
    return adapter


@pytest.fixture
def aliases(tmp_path: Path) -> Path:
    return alias_dataset(tmp_path / "aliases")


@pytest.fixture
def alias_collection(aliases: Path, tmp_path: Path) -> Path:
    build(aliases / "corpus.jsonl", tmp_path / "col").close()
    return tmp_path / "col"


# --- training on a collection --------------------------------------------------------------------


def test_a_stored_adapter_raises_recall_and_removing_it_restores_search(
    hashing_models, aliases: Path, alias_collection: Path
) -> None:
    data = load_beir(aliases, "test")
    queries = [data.queries[q] for q in data.qrels]
    plain = rankings(alias_collection, queries)
    before = recall(alias_collection, aliases)
    options = AdaptOptions(residual=AdapterSpec(rank=16), training=FAST)
    summary = adapt_collection(aliases, alias_collection, options)
    manifest = read_manifest(alias_collection)
    assert manifest.adapter is not None and manifest.adapter.kind == "residual"
    assert not manifest.adapter.maps_documents
    assert summary["stored_in"] == f"{alias_collection}/{manifest.adapter.folder}"
    assert summary["kind"] == "residual" and summary["pairs"] == 60 and summary["queries"] == 60
    assert summary["skipped_judgements"] == 0 and "saved_to" not in summary
    assert summary["loss_last_epoch"] < summary["loss_first_epoch"]
    assert adapter_folders(alias_collection) == [manifest.adapter.folder.split("/")[1]]
    after = recall(alias_collection, aliases)
    assert after > before + 0.5, (before, after)
    with opened(alias_collection) as collection:
        assert collection.adapter is not None and collection.adapter.kind == "residual"
        described = collection.info()["adapter"]
        assert described["kind"] == "residual" and described["spec"]["rank"] == 16
        assert described["trained"]["pairs"] == 60 and described["trained"]["split"] == "train"
    assert detach_adapter(alias_collection) is True
    assert read_manifest(alias_collection).adapter is None
    assert adapter_folders(alias_collection) == []
    assert rankings(alias_collection, queries) == plain  # exactly as before, scores included
    assert detach_adapter(alias_collection) is False


def test_query_vectors_are_encoded_then_adapted(aliases: Path, alias_collection: Path) -> None:
    queries = ["alias1 alias2", "alias7"]
    raw = HashingEncoder().encode_queries(queries)
    with opened(alias_collection) as collection:
        assert collection.adapter is None
        np.testing.assert_array_equal(collection.query_vectors(queries), raw)
        adapter = trained_residual(collection, aliases, AdapterSpec(rank=8))
    attach_adapter(alias_collection, adapter)
    with opened(alias_collection) as collection:
        adapted = collection.query_vectors(queries)
        np.testing.assert_allclose(adapted, adapter.adapt_queries(raw), atol=1e-6)
        assert np.abs(adapted - raw).max() > 1e-2
        # The dense retriever (every dense search and pipeline stage) scores with it.
        rows, scores = collection.dense_index.search(adapter.adapt_queries(raw), 5)
        for ranking, expected_rows, expected_scores in zip(
            collection.searcher("dense").rank(queries, 5), rows, scores, strict=True
        ):
            np.testing.assert_array_equal(ranking.rows, expected_rows)
            np.testing.assert_allclose(ranking.scores, expected_scores, atol=1e-6)


def test_hybrid_search_uses_the_adapted_dense_side(aliases: Path, tmp_path: Path) -> None:
    directory = tmp_path / "hybrid"
    build(aliases / "corpus.jsonl", directory, retriever="hybrid").close()
    queries = ["alias3 alias5", "alias11 alias2"]
    plain = rankings(directory, queries, retriever="hybrid")
    lexical = rankings(directory, queries, retriever="bm25")
    with opened(directory) as collection:
        adapter = trained_residual(collection, aliases, AdapterSpec(rank=8))
    attach_adapter(directory, adapter)
    assert rankings(directory, queries, retriever="bm25") == lexical  # BM25 has no vectors
    assert not same_rankings(rankings(directory, queries, retriever="hybrid"), plain)
    detach_adapter(directory)
    assert same_rankings(rankings(directory, queries, retriever="hybrid"), plain)


def test_an_adapter_that_maps_documents_searches_mapped_vectors(
    aliases: Path, alias_collection: Path
) -> None:
    with opened(alias_collection) as collection:
        adapter = trained_residual(collection, aliases, AdapterSpec(rank=8, sides="separate"))
        stored = np.concatenate([np.asarray(s) for s in collection.dense_vectors()[0].shards])
    record = attach_adapter(alias_collection, adapter)
    assert record.maps_documents and record.kind == "residual"
    queries = ["alias1 alias2", "alias20 alias4 alias9"]
    with opened(alias_collection) as collection:
        assert collection.adapter is not None and collection.adapter.maps_documents
        assert isinstance(collection.dense_index, FlatIndex)
        # On disk the vectors stay the model's own; the index holds the mapped ones.
        on_disk = np.concatenate([np.asarray(s) for s in collection.dense_vectors()[0].shards])
        np.testing.assert_array_equal(on_disk, stored)
        expected = adapter.adapt_queries(HashingEncoder().encode_queries(queries)) @ (
            adapter.adapt_documents(stored).T
        )
        # Calibration measures queries against the documents as the index holds them.
        dense = open_retriever(collection.stored, "dense", HashingEncoder)
        reference_rows = collection.stored.reference_documents(REFERENCE_DOCUMENTS)
        mapped = adapter.adapt_documents(stored[reference_rows])
        np.testing.assert_allclose(dense.reference, mapped, atol=1e-6)
        for hits, scores in zip(collection.search_many(queries, 5), expected, strict=True):
            rows = collection.documents.rows_of([hit.id for hit in hits])
            np.testing.assert_allclose(
                [hit.score for hit in hits], [scores[rows[hit.id]] for hit in hits], atol=1e-5
            )
            np.testing.assert_allclose(
                [hit.score for hit in hits], np.sort(scores)[::-1][:5], atol=1e-5
            )


def test_a_lexical_bridge_is_stored_with_its_tokenizer_and_applied(
    hashing_models, aliases: Path, alias_collection: Path
) -> None:
    queries = ["alias1 alias2", "alias7 and alias3"]
    plain = rankings(alias_collection, queries)
    training = AdapterTraining(epochs=5, batch=16, learning_rate=0.5)
    options = AdaptOptions(kind="lexsem", lexsem=LexSemSpec("slr"), training=training)
    summary = adapt_collection(aliases, alias_collection, options)
    assert summary["kind"] == "lexsem" and summary["spec"] == {"weights": "slr"}
    manifest = read_manifest(alias_collection)
    assert manifest.adapter is not None and manifest.adapter.kind == "lexsem"
    assert not manifest.adapter.maps_documents
    assert any(name.startswith("tokenizer/") for name in manifest.adapter.files)
    folder = alias_collection / manifest.adapter.folder
    with opened(alias_collection) as collection:
        assert collection.adapter is not None and collection.adapter.kind == "lexsem"
        bridge = collection.adapter.adapter
        assert isinstance(bridge, LexSemBridge) and bridge.vocabulary == 30522
        tokens = read_query_tokens(queries, load_tokenizer(folder / "tokenizer"))
        raw = HashingEncoder().encode_queries(queries)
        np.testing.assert_allclose(
            collection.query_vectors(queries), bridge.adapt_queries(raw, tokens), atol=1e-6
        )
    assert not same_rankings(rankings(alias_collection, queries), plain)
    detach_adapter(alias_collection)
    assert rankings(alias_collection, queries) == plain


def test_an_untrained_bridge_changes_no_search(alias_collection: Path) -> None:
    queries = ["alias1 alias2", "alias7 term3", "term5"]
    plain = rankings(alias_collection, queries)
    tokenizer = tokenizer_of(HashingEncoder())
    idf = np.ones(len(tokenizer), dtype=np.float32)
    bridge = LexSemBridge(LexSemSpec(), len(tokenizer), 64, idf=idf)
    attach_adapter(alias_collection, bridge, tokenizer=tokenizer)
    assert same_rankings(rankings(alias_collection, queries), plain)


def test_learned_weights_are_refused_for_an_encoder_without_hidden_states(
    hashing_models, aliases: Path, alias_collection: Path
) -> None:
    options = AdaptOptions(kind="lexsem", lexsem=LexSemSpec("llr"), training=FAST)
    with pytest.raises(InputError, match=r"statistical weights \(slr\)"):
        adapt_collection(aliases, alias_collection, options)
    assert read_manifest(alias_collection).adapter is None
    assert adapter_folders(alias_collection) == []


def test_an_adapter_can_be_saved_instead_of_stored(
    hashing_models, aliases: Path, alias_collection: Path, tmp_path: Path
) -> None:
    options = AdaptOptions(residual=AdapterSpec(rank=4), training=AdapterTraining(epochs=1))
    out = tmp_path / "saved"
    summary = adapt_collection(aliases, alias_collection, options, attach=False, out=out)
    assert summary["saved_to"] == str(out) and "stored_in" not in summary
    assert read_manifest(alias_collection).adapter is None
    fingerprint = HashingEncoder().fingerprint
    adapter, card = load_adapter(out, encoder_fingerprint=fingerprint)
    assert isinstance(adapter, ResidualAdapter) and card["trained"]["dataset"] == str(aliases)
    with pytest.raises(InputError, match="trained on vectors of encoder"):
        load_adapter(out, encoder_fingerprint=HashingEncoder(salt="x").fingerprint)
    both = adapt_collection(aliases, alias_collection, options, out=tmp_path / "also")
    assert both["saved_to"] and both["stored_in"]
    assert read_manifest(alias_collection).adapter is not None


def test_adapt_options_refuse_an_unknown_kind() -> None:
    with pytest.raises(InputError, match="residual, lexsem"):
        AdaptOptions(kind="prompt")  # type: ignore[arg-type]


# --- the training set ----------------------------------------------------------------------------


def test_training_pairs_point_at_every_passage_of_a_judged_document(tmp_path: Path) -> None:
    root = tmp_path / "chunked"
    (root / "qrels").mkdir(parents=True)
    write_jsonl(
        root / "corpus.jsonl",
        [
            {"_id": "long", "title": "", "text": " ".join(f"w{i}" for i in range(10))},
            {"_id": "short", "title": "", "text": "cats purr"},
            {"_id": "other", "title": "", "text": "a b c d e f"},
            {"_id": "unjudged", "title": "", "text": "salmon swim"},
        ],
    )
    write_jsonl(
        root / "queries.jsonl",
        [
            {"_id": "q1", "text": "w3 w4"},
            {"_id": "q2", "text": "purring cats"},
            {"_id": "q3", "text": "letters"},
        ],
    )
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        "q1\tlong\t1\n"
        "q2\tshort\t2\nq2\tgone\t1\n"  # a judged document the collection lacks
        "q3\tother\t0\n"  # not a positive
        "q4\tother\t1\n",  # a query the dataset lacks
        encoding="utf-8",
    )
    with build(root / "corpus.jsonl", tmp_path / "col", chunk=ChunkConfig(4, 0)) as collection:
        data = training_set(root, collection, "train")
        _, groups = collection.dense_vectors()
        rows = collection.documents.rows_of(["long", "short"])
        offsets = groups.offsets
    assert offsets is not None and len(data.document_vectors) == offsets[-1] > 4
    assert data.queries == ["w3 w4", "purring cats"]
    np.testing.assert_array_equal(data.query_vectors, HashingEncoder().encode_queries(data.queries))
    passages = {query: sorted(int(p) for q, p in data.pairs if q == query) for query in (0, 1)}
    long_start, long_end = offsets[rows["long"]], offsets[rows["long"] + 1]
    assert passages[0] == list(range(long_start, long_end)) and len(passages[0]) == 3
    assert passages[1] == [offsets[rows["short"]]]
    assert data.skipped_judgements == 1
    assert len(data.pairs) == 4


def test_judgements_of_deleted_documents_are_skipped(aliases: Path, alias_collection: Path) -> None:
    update_collection(alias_collection, delete=["d0", "d1"])
    with opened(alias_collection) as collection:
        data = training_set(aliases, collection, "train")
        live = collection.documents.rows_of([f"d{i}" for i in range(60)])
        stored = np.concatenate([np.asarray(s) for s in collection.dense_vectors()[0].shards])
    assert data.skipped_judgements == 2 and len(data.queries) == len(data.pairs) == 58
    assert "alias" in data.queries[0]
    # The deleted documents' vectors are no negatives: only live rows, renumbered in order.
    assert len(data.document_vectors) == 58
    assert {int(row) for _, row in data.pairs} == set(range(58))
    np.testing.assert_array_equal(data.document_vectors, stored[sorted(live.values())])


def test_a_dataset_with_no_judged_document_here_is_refused(
    tiny_beir: Path, alias_collection: Path
) -> None:
    (tiny_beir / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td999\t1\n")
    with (
        opened(alias_collection) as collection,
        pytest.raises(InputError, match="no judged positive"),
    ):
        training_set(tiny_beir, collection, "train")


# --- refusals ------------------------------------------------------------------------------------


def test_approximate_indexes_refuse_adapters_that_map_documents(
    aliases: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "hnsw"
    with build(aliases / "corpus.jsonl", directory, index="HNSW16") as collection:
        both = trained_residual(collection, aliases, AdapterSpec(rank=4, sides="both"))
        query_only = trained_residual(collection, aliases, AdapterSpec(rank=4))
    with pytest.raises(CollectionError, match=r"needs the exact index.*--sides query"):
        attach_adapter(directory, both)
    assert read_manifest(directory).adapter is None and adapter_folders(directory) == []
    plain = rankings(directory, ["alias1 alias2"])
    attach_adapter(directory, query_only)  # a query-side map works with any index
    assert not same_rankings(rankings(directory, ["alias1 alias2"]), plain)
    # A manifest that names a document map on this index anyway is refused on opening.
    forged = directory / ADAPTERS_DIR / "forged"
    save_adapter(both, forged, encoder_fingerprint=HashingEncoder().fingerprint)
    manifest = read_manifest(directory)
    files = {p.name: p.stat().st_size for p in forged.iterdir()}
    record = AdapterInfo(f"{ADAPTERS_DIR}/forged", "residual", files, maps_documents=True)
    write_manifest(directory, dataclasses.replace(manifest, adapter=record))
    with pytest.raises(CollectionError, match="approximate index"):
        Collection(directory)


def test_attaching_checks_the_collection(aliases: Path, tmp_path: Path) -> None:
    lexical = tmp_path / "bm25"
    build_collection(
        aliases / "corpus.jsonl",
        lexical,
        BuildOptions(progress=False, cache_dir=None, retriever="bm25"),
    ).close()
    with pytest.raises(CollectionError, match="has none"):
        attach_adapter(lexical, ResidualAdapter(AdapterSpec(rank=2), 64))
    dense = tmp_path / "dense"
    build(aliases / "corpus.jsonl", dense).close()
    with pytest.raises(CollectionError, match="16-dimensional vectors, the collection holds 64"):
        attach_adapter(dense, ResidualAdapter(AdapterSpec(rank=2), 16))
    with pytest.raises(CollectionError, match="no such collection"):
        attach_adapter(tmp_path / "nowhere", ResidualAdapter(AdapterSpec(rank=2), 64))
    assert read_manifest(dense).adapter is None and adapter_folders(dense) == []


def test_an_adapter_trained_for_another_encoder_is_refused(aliases: Path, tmp_path: Path) -> None:
    """An adapter folder copied from a collection of another model (same width) is refused
    when the collection opens, not applied to vectors it means nothing for."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    build(aliases / "corpus.jsonl", mine).close()
    other = HashingEncoder(salt="other")
    build_collection(
        aliases / "corpus.jsonl",
        theirs,
        BuildOptions(progress=False, cache_dir=None, retriever="dense"),
        encoder=other,
    ).close()
    record = attach_adapter(theirs, ResidualAdapter(AdapterSpec(rank=2), 64))
    shutil.copytree(theirs / record.folder, mine / record.folder)
    manifest = read_manifest(mine)
    write_manifest(mine, dataclasses.replace(manifest, adapter=record))
    with pytest.raises(
        CollectionError, match=f"trained on vectors of encoder '{other.fingerprint}'"
    ):
        Collection(mine)


@pytest.mark.parametrize("damage", ["delete-weights", "truncate-card", "garble-card", "no-folder"])
def test_missing_or_corrupt_adapter_files_are_collection_errors(
    damage: str, alias_collection: Path
) -> None:
    record = attach_adapter(alias_collection, ResidualAdapter(AdapterSpec(rank=2), 64))
    folder = alias_collection / record.folder
    card = folder / "adapter.json"
    if damage == "delete-weights":
        (folder / "adapter.safetensors").unlink()
    elif damage == "truncate-card":
        card.write_text(card.read_text()[:-5])
    elif damage == "garble-card":  # same size, so only reading it finds out
        card.write_text("x" * card.stat().st_size)
    else:
        shutil.rmtree(folder)
    with pytest.raises(CollectionError, match="corrupt collection"):
        Collection(alias_collection)
    # Only the manifest is read to replace or remove it, so a damaged adapter is no dead end.
    assert detach_adapter(alias_collection)
    assert len(Collection(alias_collection)) > 0


def test_the_format_version_says_whether_an_adapter_is_stored(alias_collection: Path) -> None:
    assert read_manifest(alias_collection).format_version == 1
    attach_adapter(alias_collection, ResidualAdapter(AdapterSpec(rank=2), 64))
    assert json.loads((alias_collection / "manifest.json").read_text())["format_version"] == 2
    detach_adapter(alias_collection)
    assert read_manifest(alias_collection).format_version == 1


@pytest.mark.parametrize("garble", ["not-json", "wrong-json"])
def test_a_garbled_stored_tokenizer_is_a_collection_error(
    garble: str, alias_collection: Path
) -> None:
    tokenizer = tokenizer_of(HashingEncoder())
    bridge = LexSemBridge(LexSemSpec(), len(tokenizer), 64, idf=np.ones(len(tokenizer), np.float32))
    record = attach_adapter(alias_collection, bridge, tokenizer=tokenizer)
    saved = alias_collection / record.folder / "tokenizer" / "tokenizer.json"
    size = saved.stat().st_size  # kept, so that only reading the file finds the damage
    saved.write_text("{" * size if garble == "not-json" else "{}".ljust(size))
    with pytest.raises(CollectionError, match=r"corrupt collection.*unreadable tokenizer"):
        Collection(alias_collection)


# --- writes keep the adapter ---------------------------------------------------------------------


def test_changes_and_compaction_keep_the_adapter_and_a_rebuild_drops_it(
    aliases: Path, alias_collection: Path
) -> None:
    with opened(alias_collection) as collection:
        adapter = trained_residual(collection, aliases, AdapterSpec(rank=8, sides="both"))
    record = attach_adapter(alias_collection, adapter)
    stray = alias_collection / ADAPTERS_DIR / "residual-stray"
    stray.mkdir()  # left by an interrupted attach: the next publish removes it
    new = [Document("n1", "term1 term2 term3"), Document("n2", "term4 term5")]
    update_collection(alias_collection, add=new, encoder=HashingEncoder(), cache=False)
    assert read_manifest(alias_collection).adapter == record
    assert adapter_folders(alias_collection) == [record.folder.split("/")[1]]
    query = ["alias1 alias2 alias3"]
    with opened(alias_collection) as collection:
        assert collection.adapter is not None and collection.adapter.maps_documents
        assert collection.dense_index.rows == 62
        hits = collection.search(query[0], 62)
        raw = HashingEncoder().encode_documents(["term1 term2 term3"])
        mapped_query = adapter.adapt_queries(HashingEncoder().encode_queries(query))
        expected = float(mapped_query[0] @ adapter.adapt_documents(raw)[0])
        assert {h.id: h.score for h in hits}["n1"] == pytest.approx(expected, abs=1e-5)
    update_collection(alias_collection, delete=["d0", "d1", "n2"])
    compact_collection(alias_collection)
    manifest = read_manifest(alias_collection)
    assert manifest.adapter == record and manifest.deleted == 0 and manifest.documents == 59
    with opened(alias_collection) as collection:
        assert collection.adapter is not None and collection.dense_index.rows == 59
        assert {h.id for h in collection.search(query[0], 59)} >= {"n1"}
    build_collection(
        aliases / "corpus.jsonl",
        alias_collection,
        BuildOptions(progress=False, cache_dir=None, retriever="dense"),
        encoder=HashingEncoder(),
        overwrite=True,
    ).close()
    assert read_manifest(alias_collection).adapter is None
    assert adapter_folders(alias_collection) == []


def test_a_new_adapter_replaces_the_old_one(alias_collection: Path) -> None:
    first = attach_adapter(alias_collection, ResidualAdapter(AdapterSpec(rank=2), 64))
    second = attach_adapter(
        alias_collection, ResidualAdapter(AdapterSpec(rank=3), 64), info={"note": "again"}
    )
    assert first.folder != second.folder
    assert adapter_folders(alias_collection) == [second.folder.split("/")[1]]
    with opened(alias_collection) as collection:
        assert collection.adapter is not None and collection.adapter.card["spec"]["rank"] == 3
        assert collection.adapter.card["note"] == "again"


def test_an_open_snapshot_keeps_the_adapter_it_loaded(
    aliases: Path, alias_collection: Path
) -> None:
    with opened(alias_collection) as collection:
        adapter = trained_residual(collection, aliases, AdapterSpec(rank=8))
    attach_adapter(alias_collection, adapter)
    queries = ["alias1 alias2", "alias5 alias9"]
    adapted = rankings(alias_collection, queries)
    with opened(alias_collection) as snapshot:
        detach_adapter(alias_collection)  # removes the folder the snapshot read
        assert adapter_folders(alias_collection) == []
        found = snapshot.search_many(queries, 10)
        assert [[(h.id, h.score) for h in hits] for hits in found] == adapted
    assert not same_rankings(rankings(alias_collection, queries), adapted)


def test_applied_adapter_describes_itself(alias_collection: Path) -> None:
    record = attach_adapter(
        alias_collection,
        ResidualAdapter(AdapterSpec(rank=2, sides="separate"), 64),
        info={"trained": {"dataset": "somewhere", "pairs": 3}},
    )
    applied = AppliedAdapter.load(alias_collection / record.folder, HashingEncoder().fingerprint)
    assert applied.maps_documents and applied.kind == "residual"
    assert applied.describe() == {
        "kind": "residual",
        "spec": {"form": "low-rank", "rank": 2, "sides": "separate"},
        "trained": {"dataset": "somewhere", "pairs": 3},
    }
    card = json.loads((alias_collection / record.folder / "adapter.json").read_text())
    assert card["encoder_fingerprint"] == HashingEncoder().fingerprint
    with pytest.raises(InputError, match="trained on vectors of encoder"):
        AppliedAdapter.load(alias_collection / record.folder, "another")
