"""Resumable, cache-aware encoding of collections."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from helpers import HashingEncoder

from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions

DOCS = [{"_id": f"d{i}", "text": f"document number {i} about topic {i % 3}"} for i in range(7)]


class CountingEncoder(HashingEncoder):
    """Counts the texts it encodes; raises KeyboardInterrupt once ``interrupt_after`` is reached."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        super().__init__()
        self.encoded: list[str] = []
        self.interrupt_after = interrupt_after

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        if self.interrupt_after is not None and len(self.encoded) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.encoded.extend(texts)
        return super().encode_documents(texts)


def write_corpus(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def options(**overrides) -> BuildOptions:
    values = {"retriever": "dense", "rows_per_shard": 3, "cache_dir": None, "progress": False}
    return BuildOptions(**(values | overrides))


def vectors(collection: Collection) -> np.ndarray:
    return np.concatenate([np.asarray(s) for s in collection.dense_index.shards])


def test_interrupted_build_resumes_after_its_finished_shards(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", DOCS)
    reference = build_collection(corpus, tmp_path / "ref", options(), encoder=HashingEncoder())
    out = tmp_path / "c"
    with pytest.raises(KeyboardInterrupt):
        build_collection(corpus, out, options(), encoder=CountingEncoder(interrupt_after=6))
    assert not (out / "manifest.json").exists()
    assert len(list(out.glob("gen-*/embeddings/*.json"))) == 2  # shards 0 and 1 are kept

    resumed = CountingEncoder()
    collection = build_collection(corpus, out, options(), encoder=resumed)
    assert len(resumed.encoded) == 1  # only the last shard (one document) was encoded
    assert collection.manifest.stats["encoding"]["resumed_shards"] == 2
    np.testing.assert_array_equal(vectors(collection), vectors(reference))
    assert len(list(out.glob("gen-*"))) == 1


def test_documents_changed_before_resume_are_re_encoded(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", DOCS)
    out = tmp_path / "c"
    with pytest.raises(KeyboardInterrupt):
        build_collection(corpus, out, options(), encoder=CountingEncoder(interrupt_after=6))
    changed = [dict(d) for d in DOCS]
    changed[1]["text"] = "a rewritten second document"
    write_corpus(corpus, changed)
    resumed = CountingEncoder()
    collection = build_collection(corpus, out, options(), encoder=resumed)
    assert len(resumed.encoded) == 3 + 1  # shard 0 (changed) and shard 2 (never finished)
    fresh = build_collection(corpus, tmp_path / "fresh", options(), encoder=HashingEncoder())
    np.testing.assert_array_equal(vectors(collection), vectors(fresh))


def test_other_settings_start_a_fresh_generation(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", DOCS)
    out = tmp_path / "c"
    with pytest.raises(KeyboardInterrupt):
        build_collection(corpus, out, options(), encoder=CountingEncoder(interrupt_after=3))
    other = CountingEncoder()
    build_collection(corpus, out, options(rows_per_shard=4), encoder=other)
    assert len(other.encoded) == len(DOCS)
    assert len(list(out.glob("gen-*"))) == 1


def test_the_cache_encodes_only_texts_it_has_not_seen(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", DOCS)
    cache = tmp_path / "cache"
    first = CountingEncoder()
    reference = build_collection(corpus, tmp_path / "a", options(cache_dir=cache), encoder=first)
    assert len(first.encoded) == len(DOCS)

    again = CountingEncoder()
    rebuilt = build_collection(
        corpus, tmp_path / "b", options(cache_dir=cache, retriever="hybrid"), encoder=again
    )
    assert again.encoded == []
    assert rebuilt.manifest.stats["encoding"]["cached_passages"] == len(DOCS)
    np.testing.assert_allclose(vectors(rebuilt), vectors(reference), rtol=0, atol=1e-6)

    changed = [dict(d) for d in DOCS]
    changed[4]["text"] = "something new entirely"
    write_corpus(corpus, changed)
    third = CountingEncoder()
    build_collection(corpus, tmp_path / "c", options(cache_dir=cache), encoder=third)
    assert third.encoded == ["something new entirely"]


def test_float16_storage_halves_the_shards_and_keeps_the_ranking(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", DOCS)
    encoder = HashingEncoder()
    full = build_collection(corpus, tmp_path / "f32", options(), encoder=encoder)
    half = build_collection(corpus, tmp_path / "f16", options(dtype="float16"), encoder=encoder)
    assert half.dense_index.shards[0].dtype == np.float16
    for collection in (full, half):
        collection = collection.with_encoder(encoder)
    query = "document about topic 2"
    assert [h.id for h in half.search(query, k=3)] == [h.id for h in full.search(query, k=3)]


def test_a_full_disk_stops_with_the_finished_shards_intact(tmp_path: Path, monkeypatch) -> None:
    import errno

    corpus = write_corpus(tmp_path / "corpus.jsonl", DOCS)
    real_save = np.save
    saved: list[object] = []

    def save_until_full(file, array, *args, **kwargs):
        if len(saved) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        saved.append(file)
        return real_save(file, array, *args, **kwargs)

    monkeypatch.setattr(np, "save", save_until_full)
    out = tmp_path / "c"
    with pytest.raises(OSError, match="No space left"):
        build_collection(corpus, out, options(), encoder=HashingEncoder())
    monkeypatch.setattr(np, "save", real_save)
    assert len(list(out.glob("gen-*/embeddings/*.json"))) == 2
    assert not list(out.glob("gen-*/embeddings/.*.tmp"))  # no half-written shard left behind
    resumed = CountingEncoder()
    build_collection(corpus, out, options(), encoder=resumed)
    assert len(resumed.encoded) == 1
