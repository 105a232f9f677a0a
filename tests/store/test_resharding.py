"""`reshard`: a collection split into another number of shards ranks as before, without
encoding anything again; a change that lands meanwhile is never lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_same_rankings

import densekit
from densekit.errors import CollectionError, InputError
from densekit.retrieve import open_collection
from densekit.store import BuildOptions, update_collection
from densekit.store import resharding as resharding_module
from densekit.store.resharding import reshard
from densekit.store.sharded import ShardedStore, shard_of

OPTIONS = BuildOptions(model="static", retriever="hybrid", progress=False, cache_dir=None)


def _same_rankings(directory: Path, whole, queries: list[str]) -> None:
    with open_collection(directory) as resharded:
        assert_same_rankings(resharded, whole, queries)


def test_an_unsharded_collection_is_split_without_encoding_again(
    scifact_part, tmp_path: Path
) -> None:
    corpus, queries = scifact_part
    whole = densekit.build_collection(corpus, tmp_path / "whole", OPTIONS)
    densekit.build_collection(corpus, tmp_path / "c", OPTIONS).close()
    with reshard(tmp_path / "c", 3) as sharded:
        assert len(sharded.shards) == 3 and len(sharded) == len(whole)
        for number, shard in enumerate(sharded.shards):
            assert all(shard_of(doc_id, 3) == number for doc_id in shard.doc_ids)
            encoding = shard.manifest.stats["encoding"]
            assert encoding["encoded_passages"] == 0
            assert encoding["cached_passages"] == len(shard)
    _same_rankings(tmp_path / "c", whole, queries[:100])
    assert not list((tmp_path / "c").glob(".reshard-*"))
    whole.close()


def test_a_sharded_collection_changed_then_resharded_keeps_its_changes(
    scifact_part, tmp_path: Path
) -> None:
    corpus, queries = scifact_part
    out = tmp_path / "c"
    densekit.build_collection(corpus, out, OPTIONS, shards=3).close()
    with open_collection(out) as before:
        gone = before.doc_ids[:5]
    update_collection(out, delete=gone)
    with reshard(out, 2) as sharded:
        assert isinstance(sharded, ShardedStore) and len(sharded.shards) == 2
        assert not set(gone) & set(sharded.doc_ids)
    # The reference: the same documents built unsharded from scratch.
    kept = tmp_path / "kept.jsonl"
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    kept.write_text("".join(line for line in lines if not any(f'"{g}"' in line for g in gone)))
    with densekit.build_collection(kept, tmp_path / "whole", OPTIONS) as whole:
        _same_rankings(out, whole, queries[:100])


def test_what_reshard_refuses(scifact_part, tmp_path: Path) -> None:
    corpus, _ = scifact_part
    densekit.build_collection(corpus, tmp_path / "c", OPTIONS, shards=2).close()
    with pytest.raises(InputError, match="already 2 shards; nothing to do"):
        reshard(tmp_path / "c", 2)
    with pytest.raises(InputError, match=r"--shards 1: give 2 to \d+"):
        reshard(tmp_path / "c", 1)
    with pytest.raises(CollectionError, match="no collection here"):
        reshard(tmp_path / "nothing", 2)


def test_a_change_landing_while_documents_are_read_stops_the_reshard(
    scifact_part, tmp_path: Path, monkeypatch
) -> None:
    corpus, _ = scifact_part
    out = tmp_path / "c"
    densekit.build_collection(corpus, out, OPTIONS).close()
    export = resharding_module._export

    def export_then_change(store, work, encoder, chunk):
        exported = export(store, work, encoder, chunk)
        update_collection(out, delete=[store.doc_ids[0]])  # a writer beside the reshard
        return exported

    monkeypatch.setattr(resharding_module, "_export", export_then_change)
    with pytest.raises(CollectionError, match="changed while its documents were read"):
        reshard(out, 2)
    with open_collection(out) as after:  # still the unsharded collection, with the change
        assert not isinstance(after.stored, ShardedStore)
        assert len(after) == 299
