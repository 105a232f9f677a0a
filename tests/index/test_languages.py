"""BM25 beyond English: a language's stemmer and stop words, and CJK read as bigrams, stored
with the collection so the next command's queries are read the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

import densekit
from densekit.errors import InputError
from densekit.index.languages import cjk_bigrams

ZH = Path(__file__).resolve().parents[1] / "data" / "zh-small"


def bm25(language: str | None = None, **more) -> densekit.BuildOptions:
    return densekit.BuildOptions(retriever="bm25", progress=False, bm25_language=language, **more)


def test_cjk_runs_become_spaced_bigrams_and_other_text_stays() -> None:
    assert cjk_bigrams("维生素D缺乏") == " 维生 生素 D 缺乏 "
    assert cjk_bigrams("a 猫 b") == "a  猫  b"
    assert cjk_bigrams("plain text") == "plain text"


def test_chinese_is_searched_by_bigrams_and_whole_runs_find_nothing(tmp_path: Path) -> None:
    chinese = densekit.build_collection(ZH / "corpus.jsonl", tmp_path / "zh", bm25("zh"))
    scored = densekit.evaluate(ZH, collection=chinese, metrics=["R@10", "nDCG@10"])
    assert scored.metrics["R@10"] == 1.0 and scored.metrics["nDCG@10"] > 0.9
    # Read as English, a sentence without spaces is one "word": queries match almost nothing.
    english = densekit.build_collection(ZH / "corpus.jsonl", tmp_path / "en", bm25())
    assert densekit.evaluate(ZH, collection=english, metrics=["R@10"]).metrics["R@10"] < 0.3
    assert chinese.search("熊猫吃竹子", k=1)[0].id == "p03"


def test_a_language_s_stemmer_and_stop_words(tmp_path: Path) -> None:
    corpus = tmp_path / "de.jsonl"
    corpus.write_text(
        '{"_id": "a", "text": "Die Kinder spielen im Garten."}\n'
        '{"_id": "b", "text": "Der Hund schläft im Haus."}\n',
        encoding="utf-8",
    )
    german = densekit.build_collection(corpus, tmp_path / "de", bm25("de"))
    assert german.search("Kind", k=1)[0].id == "a"  # Kinder and Kind share a stem
    assert german.search("die der im", k=2) == []  # German stop words only
    english = densekit.build_collection(corpus, tmp_path / "en", bm25())
    assert english.search("Kind", k=1) == []


def test_language_conflicts_and_unknown_codes_are_refused() -> None:
    with pytest.raises(InputError, match="unknown BM25 language 'xx'"):
        bm25("xx")
    with pytest.raises(InputError, match="sets the stemmer and stop words itself"):
        bm25("de", bm25_stemmer="french")
    assert bm25("de", bm25_stemmer="german").bm25_stopwords == "de"  # consistent: taken


def test_a_lone_cjk_character_is_a_word(tmp_path: Path) -> None:
    corpus = tmp_path / "zh.jsonl"
    corpus.write_text(
        '{"_id": "cat", "text": "猫"}\n{"_id": "dog", "text": "狗 很 忠诚"}\n', encoding="utf-8"
    )
    collection = densekit.build_collection(corpus, tmp_path / "zh", bm25("zh"))
    assert [hit.id for hit in collection.search("猫", k=2)] == ["cat"]
