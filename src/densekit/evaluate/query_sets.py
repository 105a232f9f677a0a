"""Fine-grained test sets from a corpus: keyword queries and part-of-passage (span) queries.

Dense retrieval is weakest where a query names exact terms or quotes a passage. These sets
make that measurable on any corpus: each query is built from one document, which is its only
judged answer.

- ``keyword``: the passage's most salient terms (TF-IDF against the corpus, stop words and
  short tokens left out), most salient first;
- ``span``: a contiguous run of ``span_tokens`` words (runs of letters and digits) of the
  passage, with the text between them as written.

Documents are drawn uniformly by ``seed`` among those long enough, so a set is reproducible.
The output is a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) that `densekit eval`
reads like any other.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from densekit.corpus import Document, read_corpus
from densekit.errors import InputError
from densekit.files.durability import publish_folder, refuse_to_replace

QueryTask = Literal["keyword", "span"]
TASKS: tuple[QueryTask, ...] = ("keyword", "span")
_WORD = re.compile(r"\w+", re.UNICODE)
CARD = "densekit_queries.json"


@dataclass(frozen=True)
class QuerySetSpec:
    task: QueryTask = "span"
    n: int = 500
    span_tokens: int = 16
    keywords: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        for name in ("n", "span_tokens", "keywords"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"--{name.replace('_', '-')} must be a positive integer")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"--seed must be a whole number >= 0, got {self.seed!r}")


@dataclass(frozen=True)
class QuerySetReport:
    out: str
    queries: int
    eligible_documents: int
    documents: int
    spec: dict


def make_queries(
    corpus: str | Path, out: str | Path, spec: QuerySetSpec, *, overwrite: bool = False
) -> QuerySetReport:
    """Write a BEIR test set of ``spec.n`` queries built from documents of ``corpus``."""
    out = Path(out)
    if Path(corpus).resolve().is_relative_to(out.resolve()):
        raise InputError(f"{corpus} lies inside {out}, which would be replaced; pick another --out")
    refuse_to_replace(out, overwrite)
    documents = list(read_corpus(corpus))
    if not documents:
        raise InputError(f"{corpus}: no documents to build queries from")
    if spec.task == "span":
        eligible = [d for d in documents if len(_WORD.findall(d.text)) >= spec.span_tokens]
        what = f"at least {spec.span_tokens} words"
    else:
        frequencies = _document_frequencies(documents)
        total = len(documents)
        eligible = [d for d in documents if any(frequencies[t] < total for t in _terms(d.content))]
        what = "a term that is not in every document"
    if len(eligible) < spec.n:
        fix = f"ask for at most {len(eligible)} queries (--n)" if eligible else "use another corpus"
        if spec.task == "span":
            fix += " or fewer --span-tokens"
        raise InputError(f"{corpus}: only {len(eligible)} documents have {what}; {fix}")
    rng = np.random.default_rng(spec.seed)
    eligible.sort(key=lambda d: d.id)
    chosen = [eligible[i] for i in sorted(rng.choice(len(eligible), size=spec.n, replace=False))]
    queries = []
    for number, document in enumerate(chosen):
        if spec.task == "span":
            text = _span(document.text, spec.span_tokens, rng)
        else:
            text = " ".join(_salient(document, frequencies, len(documents))[: spec.keywords])
        queries.append((f"{spec.task}-{number}", text, document.id))

    def write(folder: Path) -> None:
        _write_jsonl(
            folder / "corpus.jsonl",
            ({"_id": d.id, "title": d.title, "text": d.text} for d in documents),
        )
        _write_jsonl(folder / "queries.jsonl", ({"_id": q, "text": t} for q, t, _ in queries))
        (folder / "qrels").mkdir()
        lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t1" for q, _, d in queries)]
        (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        card = {"source": str(corpus), **asdict(spec)}
        (folder / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")

    publish_folder(out, write)
    return QuerySetReport(
        out=str(out),
        queries=len(queries),
        eligible_documents=len(eligible),
        documents=len(documents),
        spec=asdict(spec),
    )


def _span(text: str, words: int, rng: np.random.Generator) -> str:
    """``words`` consecutive words of ``text``, with the text between them as written."""
    matches = list(_WORD.finditer(text))
    start = int(rng.integers(0, len(matches) - words + 1))
    return text[matches[start].start() : matches[start + words - 1].end()]


@functools.cache
def _stop_words() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def _terms(text: str) -> list[str]:
    """Lower-cased words (runs of \\w) of 3+ characters, without stop words and numbers."""
    stop = _stop_words()
    return [
        w
        for w in (m.group().lower() for m in _WORD.finditer(text))
        if len(w) >= 3 and not w.isdigit() and w not in stop
    ]


def _document_frequencies(documents: list[Document]) -> Counter[str]:
    frequencies: Counter[str] = Counter()
    for document in documents:
        frequencies.update(set(_terms(document.content)))
    return frequencies


def _salient(document: Document, frequencies: Counter[str], total: int) -> list[str]:
    """The document's terms by TF-IDF, highest first; terms in every document say nothing."""
    counts = Counter(_terms(document.content))
    weights = {
        term: count * math.log(total / frequencies[term])
        for term, count in counts.items()
        if frequencies[term] < total
    }
    return sorted(weights, key=lambda term: (-weights[term], term))


def _write_jsonl(path: Path, records: Iterable[dict]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
