"""Dictionaries: (entry, definition) pairs for definition-trained sentence embeddings.

Two sources:

- WordNet 3.0 as Debian's ``wordnet-base`` package installs it (``/usr/share/wordnet``): each
  synset's gloss is split into its definition and its quoted examples; every word of the synset
  (multi-word entries included, ``_`` read as a space, adjective markers such as ``(a)``
  dropped) becomes an entry with that definition.
- A TSV file of ``entry<TAB>definition`` lines, a user's own dictionary (a header line
  ``entry<TAB>definition`` is allowed).

Identical (entry, definition) pairs are kept once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from densekit.errors import InputError

WORDNET_FOLDER = Path("/usr/share/wordnet")
WORDNET_PARTS = ("noun", "verb", "adj", "adv")
_ADJECTIVE_MARKER = re.compile(r"\((?:a|p|ip)\)$")
_FIRST_EXAMPLE = re.compile(r'(?:^|[;:] )"')
_EXAMPLE = re.compile(r'"([^"]*)"')


@dataclass(frozen=True)
class Definition:
    """An entry (a word or phrase), what defines it, and where it was read (``file:line``)."""

    entry: str
    definition: str
    source: str = ""
    examples: tuple[str, ...] = ()


def read_wordnet(folder: Path = WORDNET_FOLDER) -> list[Definition]:
    """Every (word, definition) pair of WordNet's data files in ``folder``."""
    missing = [part for part in WORDNET_PARTS if not (folder / f"data.{part}").is_file()]
    if missing:
        raise InputError(
            f"WordNet not found in {folder} (no data.{missing[0]}): install Debian's "
            "wordnet-base package (apt-get install wordnet-base), or give your own dictionary "
            "as a TSV of entry<TAB>definition lines"
        )
    found: dict[tuple[str, str], Definition] = {}
    for part in WORDNET_PARTS:
        for definition in _wordnet_part(folder / f"data.{part}"):
            found.setdefault((definition.entry, definition.definition), definition)
    return list(found.values())


def _wordnet_part(path: Path) -> Iterator[Definition]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if line.startswith("  "):  # the licence header
                continue
            fields, bar, gloss = line.partition(" | ")
            parts = fields.split()
            if not bar or len(parts) < 4:
                raise InputError(f"{path}:{number}: not a WordNet data line")
            try:
                count = int(parts[3], 16)
            except ValueError:
                raise InputError(f"{path}:{number}: not a WordNet data line") from None
            definition, examples = _split_gloss(gloss.strip())
            if not definition:
                continue
            for word in parts[4 : 4 + 2 * count : 2]:
                entry = _ADJECTIVE_MARKER.sub("", word).replace("_", " ")
                yield Definition(entry, definition, f"{path}:{number}", examples)


def _split_gloss(gloss: str) -> tuple[str, tuple[str, ...]]:
    """A gloss's definition (what comes before its first quoted example) and its examples.

    Examples follow the definition after "; " or ": ", may hold "; " themselves, and may end in
    an attribution (``"..." --Thomas Paine``), which is dropped.
    """
    start = _FIRST_EXAMPLE.search(gloss)
    if start is None:
        return gloss.strip().rstrip(";").strip(), ()
    definition = gloss[: start.start()].strip().rstrip(";:").strip()
    return definition, tuple(_EXAMPLE.findall(gloss[start.start() :]))


def read_dictionary_tsv(path: str | Path) -> list[Definition]:
    """``entry<TAB>definition`` lines; a bad line is refused with its ``file:line``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such dictionary file")
    found: dict[tuple[str, str], Definition] = {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text; save the dictionary as UTF-8") from None
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip() or (number == 1 and line.lower() == "entry\tdefinition"):
            continue
        entry, tab, definition = line.partition("\t")
        if not tab or not entry.strip() or not definition.strip() or "\t" in definition:
            raise InputError(
                f"{path}:{number}: expected 'entry<TAB>definition' (two non-empty fields)"
            )
        pair = (entry.strip(), definition.strip())
        found.setdefault(pair, Definition(*pair, source=f"{path}:{number}"))
    if not found:
        raise InputError(f"{path}: holds no entry<TAB>definition lines")
    return list(found.values())
