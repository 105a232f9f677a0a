"""Changes to a sharded collection: routed by id, published in every shard at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import HashingEncoder, assert_same_rankings

import densekit
from densekit.corpus.document import Document
from densekit.errors import InputError, ModelMismatchError
from densekit.retrieve import open_collection
from densekit.store import BuildOptions, update_collection
from densekit.store import sharded_changes as sharded_changes_module
from densekit.store.change_writer import ChangeWriter
from densekit.store.sharded import SHARD_NAME, shard_of
from densekit.store.sharded_build import build_sharded

OPTIONS = BuildOptions(progress=False, cache_dir=None)
NEW = [
    Document("new-1", "Vitamin D and calcium supplements in the elderly", "Bones"),
    Document("new-2", "Dogs that bark at night: a survey of owners", "Dogs"),
]


@pytest.fixture
def pair(scifact_part, tmp_path: Path) -> tuple[Path, Path]:
    """The same 300 SciFact abstracts, unsharded and in three shards (hashing model)."""
    corpus, _ = scifact_part
    densekit.build_collection(corpus, tmp_path / "whole", OPTIONS, encoder=HashingEncoder()).close()
    build_sharded(corpus, tmp_path / "sharded", OPTIONS, shards=3, encoder=HashingEncoder()).close()
    return tmp_path / "whole", tmp_path / "sharded"


def change_both(pair: tuple[Path, Path], **change) -> list:
    return [update_collection(c, encoder=HashingEncoder(), cache=False, **change) for c in pair]


def assert_same_searches(pair: tuple[Path, Path], queries: list[str]) -> None:
    whole, sharded = (open_collection(c, encoder=HashingEncoder()) for c in pair)
    with whole, sharded:
        assert sorted(whole.doc_ids) == sorted(sharded.doc_ids)
        assert_same_rankings(sharded, whole, queries)


def test_adds_updates_and_deletes_leave_the_shards_ranking_as_the_unsharded_collection(
    pair, scifact_part
) -> None:
    _, queries = scifact_part
    with open_collection(pair[1], encoder=HashingEncoder()) as sharded:
        first, second = sharded.doc_ids[:2]
    reports = change_both(pair, add=NEW, update=[Document(first, "A new text about bone density")])
    assert [(r.added, r.updated, r.documents) for r in reports] == [(2, 1, 302)] * 2
    reports = change_both(pair, delete=[second, "new-2"])
    assert [(r.deleted, r.documents) for r in reports] == [(2, 300)] * 2
    assert_same_searches(pair, queries[:60])
    with open_collection(pair[1], encoder=HashingEncoder()) as sharded:
        shards = sharded.stored.shards
        assert "new-1" in shards[shard_of("new-1", 3)].doc_ids


def test_a_change_that_fails_in_one_shard_changes_no_shard(
    pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    shards_file = pair[1] / "shards.json"
    before = shards_file.read_text()
    folders = sorted(p for p in pair[1].iterdir() if SHARD_NAME.fullmatch(p.name))
    contents = {folder: sorted(p.name for p in folder.iterdir()) for folder in folders}
    real, calls = ChangeWriter.write, []

    def fail_in_the_second_shard(self, *args, **kwargs):
        calls.append(self.directory)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ChangeWriter, "write", fail_in_the_second_shard)
    with pytest.raises(OSError, match="No space left"):
        update_collection(pair[1], add=NEW, encoder=HashingEncoder(), cache=False)
    assert shards_file.read_text() == before
    assert {folder: sorted(p.name for p in folder.iterdir()) for folder in folders} == contents
    with open_collection(pair[1], encoder=HashingEncoder()) as sharded:
        assert "new-1" not in sharded.doc_ids and len(sharded) == 300


def test_a_crash_after_publishing_is_rolled_forward_by_the_next_write(
    pair, scifact_part, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sharded_changes_module.roll_forward
    calls = []

    def crash_after_publishing(directory, shard_set):
        calls.append(1)
        if len(calls) == 2:  # the first call tidies up before the change, the second after it
            raise KeyboardInterrupt
        real(directory, shard_set)

    monkeypatch.setattr(sharded_changes_module, "roll_forward", crash_after_publishing)
    with pytest.raises(KeyboardInterrupt):
        update_collection(pair[1], add=NEW, encoder=HashingEncoder(), cache=False)
    monkeypatch.setattr(sharded_changes_module, "roll_forward", real)
    with open_collection(pair[1], encoder=HashingEncoder()) as sharded:  # the change is published
        assert {"new-1", "new-2"} <= set(sharded.doc_ids)
    folder = (
        pair[1] / json.loads((pair[1] / "shards.json").read_text())["shards"][shard_of("new-1", 3)]
    )
    with open_collection(folder, encoder=HashingEncoder()) as shard:  # its own manifest lags
        assert "new-1" not in shard.doc_ids
    update_collection(pair[0], add=NEW, encoder=HashingEncoder(), cache=False)
    change_both(pair, delete=["new-2"])
    with open_collection(folder, encoder=HashingEncoder()) as shard:
        assert "new-1" in shard.doc_ids
    assert_same_searches(pair, scifact_part[1][:30])


def test_bad_changes_are_refused_and_change_nothing(pair) -> None:
    before = (pair[1] / "shards.json").read_text()
    with pytest.raises(InputError, match="cannot delete 1 unknown document id"):
        update_collection(pair[1], delete=["no-such-id"])
    with pytest.raises(InputError, match="already in"):
        update_collection(pair[1], add=[NEW[0], Document("4983", "x")], encoder=HashingEncoder())
    with pytest.raises(InputError, match="no documents to add, update or delete"):
        update_collection(pair[1])
    with pytest.raises(InputError, match="not compacted yet"):
        update_collection(pair[1], delete=["4983"], compact_above=0.5)
    with pytest.raises(ModelMismatchError, match="was built with model 'hashing'"):
        update_collection(pair[1], add=NEW, encoder=HashingEncoder(salt="other"))
    assert (pair[1] / "shards.json").read_text() == before


def test_a_change_may_not_empty_a_shard(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    ids = [f"d{i}" for i in range(12)]
    corpus.write_text("".join(json.dumps({"_id": i, "text": f"text {i}"}) + "\n" for i in ids))
    build_sharded(corpus, tmp_path / "c", BuildOptions(retriever="bm25"), shards=2).close()
    alone = [i for i in ids if shard_of(i, 2) == 0]
    with pytest.raises(InputError, match="would leave shard 0 without documents"):
        update_collection(tmp_path / "c", delete=alone)
