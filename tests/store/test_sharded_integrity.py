"""`densekit check` of a sharded collection: damage named by shard, leftovers repaired."""

from __future__ import annotations

import json
from pathlib import Path

from densekit.store import BuildOptions
from densekit.store.collection_info import sharded_info
from densekit.store.sharded import ShardedStore
from densekit.store.sharded_build import build_sharded
from densekit.store.sharded_integrity import repair_sharded, verify_sharded


def sharded(tmp_path: Path, scifact_part) -> Path:
    options = BuildOptions(retriever="bm25", progress=False)
    build_sharded(scifact_part[0], tmp_path / "c", options, shards=3).close()
    return tmp_path / "c"


def test_a_whole_sharded_collection_verifies_and_opens(scifact_part, tmp_path: Path) -> None:
    directory = sharded(tmp_path, scifact_part)
    report = verify_sharded(directory, open_check=True)
    assert report.ok and report.opened and not report.leftovers
    assert report.verified == report.files > 0 and report.generation == "3 shards"
    # Kept for this publication, as a server's background check shows it in the info.
    store = ShardedStore(directory)
    assert sharded_info(store)["integrity"] == report.summary()
    store.close()


def test_a_damaged_file_is_named_with_its_shard(scifact_part, tmp_path: Path) -> None:
    out = sharded(tmp_path, scifact_part)
    name = json.loads((out / "shards.json").read_text())["shards"][1]
    victim = next((out / name).glob("gen-*/bm25/vocab.index.json"))
    victim.write_text(victim.read_text().replace("a", "b", 1))
    report = verify_sharded(out, open_check=True)
    assert not report.ok
    assert [d.path for d in report.damaged] == [str(victim.relative_to(out))]
    assert "checksum differs" in report.damaged[0].reason


def test_repair_removes_leftovers_of_builds_and_shards(scifact_part, tmp_path: Path) -> None:
    out = sharded(tmp_path, scifact_part)
    name = json.loads((out / "shards.json").read_text())["shards"][0]
    (out / ".routing-0123abcd").mkdir()
    (out / "shard-000-of-002-0123abcd").mkdir()
    (out / name / "gen-20200101T000000-0123abcd").mkdir()
    found = {f.path for f in verify_sharded(out).leftovers}
    assert found == {
        ".routing-0123abcd",
        "shard-000-of-002-0123abcd",
        f"{name}/gen-20200101T000000-0123abcd",
    }
    assert {f.path for f in repair_sharded(out)} == found
    assert not verify_sharded(out).leftovers
    assert verify_sharded(out, open_check=True).ok
