"""Reading dictionaries: WordNet's data files and a user's TSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from densekit.corpus.dictionary import (
    WORDNET_FOLDER,
    Definition,
    read_dictionary_tsv,
    read_wordnet,
)
from densekit.errors import InputError

LICENCE = "  1 This software and database is being provided to you, the LICENSEE\n"
NOUNS = (
    "00002137 03 n 02 abstraction 0 abstract_entity 0 010 @ 00001740 n 0000 | a general "
    "concept formed by extracting common features from specific examples  \n"
    '00002138 03 n 01 writer 0 000 | one who writes: "he sent Smith a letter" --Thomas Paine  \n'
    '00002139 03 n 01 art 0 000 | a skill; "tying bow ties is an art; the untying is easy";\n'
)
ADJECTIVES = (
    "00001740 00 a 01 able(a) 0 005 = 05200169 n 0000 | (usually followed by `to') having "
    'the necessary means or skill; "able to swim"; "she was able to program her computer"  \n'
)


def write_wordnet(folder: Path) -> Path:
    folder.mkdir()
    (folder / "data.noun").write_text(LICENCE + NOUNS)
    (folder / "data.adj").write_text(LICENCE + ADJECTIVES)
    (folder / "data.verb").write_text(LICENCE)
    (folder / "data.adv").write_text(LICENCE)
    return folder


def test_wordnet_gives_each_word_of_a_synset_its_definition(tmp_path: Path) -> None:
    found = read_wordnet(write_wordnet(tmp_path / "wordnet"))
    abstraction = "a general concept formed by extracting common features from specific examples"
    assert [(d.entry, d.definition) for d in found] == [
        ("abstraction", abstraction),
        ("abstract entity", abstraction),
        ("writer", "one who writes"),
        ("art", "a skill"),
        ("able", "(usually followed by `to') having the necessary means or skill"),
    ]
    assert found[3].examples == ("tying bow ties is an art; the untying is easy",)
    assert found[2].examples == ("he sent Smith a letter",)
    assert found[4].examples == ("able to swim", "she was able to program her computer")
    assert found[0].source.endswith("data.noun:2")


def test_missing_wordnet_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="apt-get install wordnet-base"):
        read_wordnet(tmp_path)


def test_malformed_wordnet_line_is_named(tmp_path: Path) -> None:
    folder = write_wordnet(tmp_path / "wordnet")
    (folder / "data.verb").write_text(LICENCE + "garbage without a gloss\n")
    with pytest.raises(InputError, match=r"data\.verb:2: not a WordNet data line"):
        read_wordnet(folder)


def test_tsv_dictionary_keeps_distinct_pairs(tmp_path: Path) -> None:
    path = tmp_path / "mine.tsv"
    fetch = "retriever\ta dog bred to fetch\n"
    path.write_text(f"\ufeffentry\tdefinition\n{fetch}\n{fetch}")
    assert read_dictionary_tsv(path) == [
        Definition("retriever", "a dog bred to fetch", f"{path}:2")
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "holds no entry"),
        ("retriever\n", ":1: expected 'entry<TAB>definition'"),
        ("a\tb\nc\t\n", ":2: expected"),
        ("a\tb\tc\n", ":1: expected"),
    ],
)
def test_malformed_tsv_dictionary_is_refused_at_its_line(
    tmp_path: Path, text: str, needle: str
) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=needle):
        read_dictionary_tsv(path)
    with pytest.raises(InputError, match="no such dictionary"):
        read_dictionary_tsv(tmp_path / "none.tsv")


def test_the_installed_wordnet_reads_whole() -> None:
    if not (WORDNET_FOLDER / "data.noun").is_file():
        pytest.fail(
            "WordNet is missing: run `make wordnet` (apt-get install wordnet-base)",
            pytrace=False,
        )
    found = read_wordnet()
    # WordNet 3.0 has 117,659 synsets; 17 repeat a word and definition another synset has.
    assert len({d.source for d in found}) == 117_642 and len(found) == 206_944
    banks = {d.definition for d in found if d.entry == "bank"}
    assert "a building in which the business of banking transacted" in banks


def test_a_dictionary_that_is_not_utf8_is_named_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.tsv"
    path.write_bytes("dog\ta pet\ncafé\ta place\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.tsv:2: not UTF-8 text"):
        read_dictionary_tsv(path)
