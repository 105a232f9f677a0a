"""`densekit train-defsent` in one process, its model indexing in the next."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import make_documents, write_corpus


def densekit(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "densekit.cli.main", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


DEFINITIONS = [
    ("vitamin", "an organic compound needed in small amounts for health"),
    ("bone", "the hard tissue that makes up the skeleton"),
    ("fracture", "a break in a bone"),
    ("market", "a place where goods are bought and sold"),
    ("crash", "a sudden fall in prices"),
    ("protein", "a molecule made of chains of amino acids"),
]


def test_trained_from_a_dictionary_then_indexed_in_the_next_process(tmp_path: Path) -> None:
    dictionary = tmp_path / "mine.tsv"
    dictionary.write_text("".join(f"{e}\t{d}\n" for e, d in DEFINITIONS))
    done = densekit(
        "train-defsent", "--dictionary", dictionary, "--out", tmp_path / "m", "--batch", "3",
        "--isotropy", "full", "--quiet", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["pairs"], report["entries"], report["steps"]) == (6, 6, 2)

    corpus = write_corpus(tmp_path / "corpus.jsonl", make_documents(0, 30))
    built = densekit("index", corpus, "--model", tmp_path / "m", "--out", tmp_path / "c", "--quiet")
    assert built.returncode == 0, built.stderr
    found = densekit("search", tmp_path / "c", "vitamin bone", "--json")
    assert found.returncode == 0 and len(json.loads(found.stdout)["hits"]) == 10


def test_bad_dictionaries_get_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("dog\ta pet\ncat without a definition\n")
    few = tmp_path / "few.tsv"
    few.write_text("dog\ta pet\ncat\tanother pet\n")
    for args, needle in (
        (("--dictionary", bad), f"{bad}:2: expected 'entry<TAB>definition'"),
        (("--dictionary", few), "fewer than the batch of 64"),
        (("--wordnet", tmp_path), "apt-get install wordnet-base"),
        (("--dictionary", tmp_path / "none.tsv"), "no such dictionary file"),
    ):
        done = densekit("train-defsent", "--out", tmp_path / "m", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert needle in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "m").exists()
