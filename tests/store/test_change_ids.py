"""Ids under the id rules: new ones are checked, stored ones written before the rules stay
readable, searchable and deletable."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_jsonl
from helpers import HashingEncoder

from densekit.corpus import Document
from densekit.corpus import readers as readers_module
from densekit.errors import InputError
from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions, update_collection

LEGACY_IDS = ["tab\there", " padded ", "x" * 600]


def build_before_the_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A collection holding ids today's rules refuse, as older versions wrote them."""
    records = [{"_id": doc_id, "text": f"legacy text {n}"} for n, doc_id in enumerate(LEGACY_IDS)]
    records.append({"_id": "ok", "text": "plain text"})
    corpus = write_jsonl(tmp_path / "legacy.jsonl", records)
    with monkeypatch.context() as patch:
        patch.setattr(readers_module, "check_id", lambda value, where: value)
        build_collection(
            corpus,
            tmp_path / "legacy",
            BuildOptions(progress=False, cache_dir=None),
            encoder=HashingEncoder(),
        ).close()
    return tmp_path / "legacy"


def test_ids_written_before_the_rules_are_searched_and_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = build_before_the_rules(tmp_path, monkeypatch)
    with Collection(directory) as collection:
        collection = collection.with_encoder(HashingEncoder())
        found = {hit.id for hit in collection.search("legacy text", k=10)}
    assert set(LEGACY_IDS) <= found
    report = update_collection(
        directory, delete=LEGACY_IDS[:2], encoder=HashingEncoder(), cache=False
    )
    assert report.deleted == 2 and report.documents == 2


def test_new_documents_follow_the_rules_and_unknown_ids_stay_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = build_before_the_rules(tmp_path, monkeypatch)
    new = Document("tab\tagain", "text", source="new.jsonl:1")
    with pytest.raises(InputError, match=r"new\.jsonl:1: id 'tab\\tagain' holds a control"):
        update_collection(directory, add=[new], encoder=HashingEncoder(), cache=False)
    with pytest.raises(InputError, match="cannot delete 1 unknown document id"):
        update_collection(directory, delete=["tab\tnot"], encoder=HashingEncoder(), cache=False)
