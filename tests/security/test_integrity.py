"""Checksums recorded at commit time find bytes overwritten with the same length (which opening,
checking sizes only, cannot), on `densekit check`, `densekit info --verify`, the Python API and
in the background of `densekit serve`; each names the file and says what to do."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from conftest import DOCUMENTS, write_jsonl
from helpers import HashingEncoder
from serving import build_hashing_collection, hashing_state

from densekit.cli.main import main
from densekit.corpus import Document
from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions, compact_collection, update_collection
from densekit.store.integrity import CHECKSUMS_FILE, verify_collection
from densekit.store.layout import directory_lock


def build(tmp_path: Path, name: str = "c") -> Path:
    corpus = write_jsonl(
        tmp_path / f"{name}.jsonl",
        [{"_id": f"d{i}", "text": f"text number {i} about w{i % 5}"} for i in range(30)],
    )
    out = tmp_path / name
    build_collection(
        corpus,
        out,
        BuildOptions(progress=False, cache_dir=None, rows_per_shard=10),
        encoder=HashingEncoder(),
    ).close()
    return out


def manifest(collection: Path) -> dict:
    return json.loads((collection / "manifest.json").read_text())


def garble(path: Path) -> None:
    """Overwrite the last bytes with others of the same length: sizes still agree."""
    data = bytearray(path.read_bytes())
    tail = min(64, len(data))
    data[-tail:] = bytes((byte + 1) % 256 for byte in data[-tail:])
    path.write_bytes(bytes(data))


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_whole_collection_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    collection = build(tmp_path)
    report = verify_collection(collection)
    assert report.ok and report.verified == report.files == len(manifest(collection)["files"]) - 1
    assert report.unrecorded == [] and report.leftovers == []
    code, out, _ = run_cli(capsys, "check", collection)
    assert code == 0 and "result     ok" in out
    code, out, _ = run_cli(capsys, "check", collection, "--json")
    assert code == 0 and json.loads(out)["ok"] is True and json.loads(out)["opened"] is True
    code, out, _ = run_cli(capsys, "info", collection, "--verify")
    assert code == 0 and f"{report.files} of {report.files} files verified" in out


@pytest.mark.parametrize("target", ["shard", "documents", "bm25", "tombstones", "record"])
def test_same_size_damage_is_found_and_named(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collection = build(tmp_path)
    update_collection(collection, delete=["d3"], encoder=HashingEncoder(), cache=False)
    data = manifest(collection)
    generation = data["generation"]
    name = {
        "shard": data["dense"]["shards"][1],
        "documents": f"{generation}/documents.sqlite",
        "bm25": next(f for f in data["files"] if f.startswith(f"{generation}/bm25/")),
        "tombstones": data["tombstones"],
        "record": f"{generation}/{CHECKSUMS_FILE}",
    }[target]
    garble(collection / name)
    report = verify_collection(collection)
    assert not report.ok and [damage.path for damage in report.damaged] == [name]
    assert "densekit index" in report.advice and "backup" in report.advice
    code, out, err = run_cli(capsys, "check", collection)
    assert code == 1 and err == ""
    assert f"DAMAGED    {name}: " in out and "rebuild it: densekit index" in out
    code, out, _ = run_cli(capsys, "info", collection, "--verify", "--json")
    assert code == 1 and json.loads(out)["damaged"][0]["path"] == name


def test_a_record_of_checksums_nested_too_deeply_is_damage_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collection = build(tmp_path)
    data = manifest(collection)
    record = f"{data['generation']}/{CHECKSUMS_FILE}"
    (collection / record).write_text("[" * 100_000 + "]" * 100_000)
    data["files"][record] = (collection / record).stat().st_size  # its size agrees: it is read
    (collection / "manifest.json").write_text(json.dumps(data))
    said = "the record of checksums is unreadable (not a densekit checksums file (nested too"
    assert [(d.path, d.reason[: len(said)]) for d in verify_collection(collection).damaged] == [
        (record, said)
    ]
    code, out, err = run_cli(capsys, "check", collection)
    assert code == 1 and err == "" and f"DAMAGED    {record}: " in out
    assert "unchecked" not in out  # the files are not "written before checksums"


def test_a_garbled_shard_still_opens_but_check_names_it(tmp_path: Path) -> None:
    collection = build(tmp_path)
    shard = manifest(collection)["dense"]["shards"][0]
    garble(collection / shard)
    Collection(collection).close()  # opening checks sizes only, and stays fast
    damaged = verify_collection(collection).damaged
    assert [(d.path, d.reason) for d in damaged] == [
        (shard, "its bytes changed since it was written (the checksum differs)")
    ]


def test_shared_files_keep_their_checksums_through_changes_and_compaction(
    tmp_path: Path,
) -> None:
    collection = build(tmp_path)
    first = manifest(collection)["dense"]["shards"][0]
    update_collection(
        collection,
        add=[Document("new", "a new text")],
        delete=["d1"],
        encoder=HashingEncoder(),
        cache=False,
    )
    report = verify_collection(collection)
    assert report.ok and report.unrecorded == [] and report.verified == report.files
    assert first in manifest(collection)["files"]  # shared with the first generation
    garble(collection / first)
    assert [damage.path for damage in verify_collection(collection).damaged] == [first]
    other = build(tmp_path, "other")
    update_collection(other, delete=["d2"], encoder=HashingEncoder(), cache=False)
    compact_collection(other)
    report = verify_collection(other)
    assert report.ok and report.unrecorded == [] and report.verified == report.files


def test_a_collection_without_checksums_still_opens_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collection = build(tmp_path)
    data = manifest(collection)
    record = f"{data['generation']}/{CHECKSUMS_FILE}"
    (collection / record).unlink()  # as written by a densekit that predates checksums
    del data["files"][record]
    (collection / "manifest.json").write_text(json.dumps(data))
    assert len(Collection(collection)) == 30
    report = verify_collection(collection)
    assert report.ok and report.verified == 0 and len(report.unrecorded) == report.files
    code, out, _ = run_cli(capsys, "info", collection, "--verify")
    assert code == 0 and "no checksums recorded" in out
    code, out, _ = run_cli(capsys, "check", collection)
    assert code == 0 and "no checksums recorded for" in out


def test_stored_adapter_files_are_verified(tmp_path: Path) -> None:
    from densekit.adapt import AdapterSpec, ResidualAdapter
    from densekit.store.adapters import attach_adapter

    collection = build(tmp_path)
    record = attach_adapter(collection, ResidualAdapter(AdapterSpec(rank=2), 64))
    report = verify_collection(collection)
    assert report.ok and report.verified == report.files and report.unrecorded == []
    weights = next(name for name in record.files if name.endswith(".safetensors"))
    garble(collection / record.folder / weights)
    damaged = verify_collection(collection).damaged
    assert [damage.path for damage in damaged] == [f"{record.folder}/{weights}"]


def test_leftovers_of_a_write_in_progress_are_not_reported(tmp_path: Path) -> None:
    collection = build(tmp_path)
    staged = collection / "gen-20990101T000000-0badcafe"
    staged.mkdir()  # as a writer staging its generation
    assert [left.path for left in verify_collection(collection).leftovers] == [staged.name]
    with directory_lock(collection):
        report = verify_collection(collection)
    assert report.write_in_progress and report.leftovers == []


def checked_infos(url: str, names: list[str]) -> dict[str, dict]:
    """Each collection's info once the server's background check has reported on it."""
    deadline = time.monotonic() + 60
    while True:
        infos = {n: httpx.get(f"{url}/collections/{n}", timeout=10).json() for n in names}
        if all(info["integrity"] is not None for info in infos.values()):
            return infos
        assert time.monotonic() < deadline, "the background check did not finish"
        time.sleep(0.05)


def test_the_server_verifies_its_collections_in_the_background(tmp_path: Path, serve_state) -> None:
    whole = build_hashing_collection(tmp_path / "whole")
    damaged = build_hashing_collection(tmp_path / "damaged")
    shard = manifest(damaged)["dense"]["shards"][0]
    garble(damaged / shard)
    url = serve_state(hashing_state({"whole": whole, "damaged": damaged}))
    infos = checked_infos(url, ["whole", "damaged"])
    assert infos["whole"]["integrity"]["ok"] is True
    assert infos["damaged"]["integrity"]["ok"] is False
    assert infos["damaged"]["integrity"]["damaged"][0]["path"] == shard
    assert str(damaged) not in json.dumps(infos["damaged"])  # no server paths for clients
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert 'densekit_collection_damaged_files{collection="damaged"} 1.0' in metrics
    assert 'densekit_collection_damaged_files{collection="whole"} 0.0' in metrics


def test_the_server_verifies_every_shard_of_a_sharded_collection(
    tmp_path: Path, serve_state
) -> None:
    from densekit.store.sharded_build import build_sharded

    corpus = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    options = BuildOptions(progress=False, cache_dir=None)
    for name in ("sound", "damaged"):
        build_sharded(corpus, tmp_path / name, options, shards=2, encoder=HashingEncoder()).close()
    folder = sorted((tmp_path / "damaged").glob("shard-*"))[1]
    shard = manifest(folder)["dense"]["shards"][0]
    garble(folder / shard)
    url = serve_state(hashing_state({"sound": tmp_path / "sound", "damaged": tmp_path / "damaged"}))
    infos = checked_infos(url, ["sound", "damaged"])
    assert infos["sound"]["integrity"]["ok"] is True
    assert infos["damaged"]["integrity"]["damaged"][0]["path"] == f"{folder.name}/{shard}"
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert 'densekit_collection_damaged_files{collection="damaged"} 1.0' in metrics
