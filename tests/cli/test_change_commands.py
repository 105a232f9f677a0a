"""`densekit add / update / delete / compact` with a real model, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_jsonl
from required import require
from test_cli import run_cli


@pytest.fixture
def collection(capsys, tiny_beir: Path, tmp_path: Path) -> Path:
    require("static_model")
    out = tmp_path / "c"
    flags = ["--model", "static", "--quiet", "--no-cache", "--index", "HNSW16"]
    code, _, err = run_cli(capsys, "index", tiny_beir / "corpus.jsonl", "--out", out, *flags)
    assert code == 0, err
    return out


def search_ids(capsys, collection: Path, query: str) -> list[str]:
    code, out, err = run_cli(capsys, "search", collection, query, "-k", "10", "--json")
    assert code == 0, err
    return [hit["id"] for hit in json.loads(out)["hits"]]


def test_add_update_delete_and_compact(capsys, collection: Path, tmp_path: Path) -> None:
    new = write_jsonl(
        tmp_path / "new.jsonl",
        [
            {"_id": "d6", "title": "Owls", "text": "Owls hunt mice at night in silent flight."},
            {"_id": "d7", "title": "Tea", "text": "Green tea is brewed from unoxidised leaves."},
        ],
    )
    code, out, err = run_cli(capsys, "add", collection, new, "--quiet")
    assert code == 0, err
    assert "added 2, updated 0, deleted 0; 7 documents" in out
    assert search_ids(capsys, collection, "owls hunting at night")[0] == "d6"

    changed = write_jsonl(
        tmp_path / "changed.jsonl", [{"_id": "d1", "text": "Owls nest in barns."}]
    )
    code, out, err = run_cli(capsys, "update", collection, changed, "--quiet")
    assert code == 0 and "updated 1" in out, err

    ids = tmp_path / "ids.txt"
    ids.write_text("d2  # loyal dogs\n\nd4\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "delete", collection, "d3", "--ids-file", ids, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["deleted"] == 3 and report["documents"] == 4 and report["tombstones"] == 4
    assert set(search_ids(capsys, collection, "dogs vitamin salmon")) == {"d1", "d5", "d6", "d7"}
    code, out, _ = run_cli(capsys, "info", collection)
    assert "4 (+4 deleted, kept until densekit compact)" in out

    code, out, err = run_cli(capsys, "compact", collection, "--quiet")
    assert code == 0 and "removed 4 deleted documents, 4 remain" in out, err
    code, out, _ = run_cli(capsys, "info", collection, "--json")
    assert json.loads(out)["documents"] == 4 and json.loads(out)["deleted"] == 0
    code, out, _ = run_cli(capsys, "compact", collection)
    assert code == 0 and "nothing to compact" in out


def test_bad_changes_exit_2_and_change_nothing(capsys, collection: Path, tmp_path: Path) -> None:
    manifest = (collection / "manifest.json").read_text()
    duplicate = write_jsonl(tmp_path / "dup.jsonl", [{"_id": "d1", "text": "again"}])
    code, _, err = run_cli(capsys, "add", collection, duplicate)
    assert code == 2 and "dup.jsonl:1: document 'd1' is already in" in err
    assert "Traceback" not in err
    unknown = write_jsonl(tmp_path / "unknown.jsonl", [{"_id": "zz", "text": "text"}])
    code, _, err = run_cli(capsys, "update", collection, unknown)
    assert code == 2 and "cannot update document 'zz'" in err
    code, _, err = run_cli(capsys, "delete", collection, "d1", "nope")
    assert code == 2 and "cannot delete 1 unknown document id(s): 'nope'" in err
    code, _, err = run_cli(capsys, "delete", collection)
    assert code == 2 and "no ids to delete" in err
    code, _, err = run_cli(capsys, "delete", collection, "d1", "--compact-above", "2")
    assert code == 2 and "--compact-above" in err
    code, _, err = run_cli(capsys, "delete", tmp_path / "nowhere", "d1")
    assert code == 2 and "no such collection" in err
    assert (collection / "manifest.json").read_text() == manifest

    code, out, err = run_cli(capsys, "add", collection, duplicate, "--upsert", "--quiet")
    assert code == 0 and "added 0, updated 1" in out, err
