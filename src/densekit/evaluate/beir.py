"""BEIR-layout datasets: corpus.jsonl, queries.jsonl and qrels/<split>.tsv (``.gz`` allowed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from densekit.corpus import ir_datasets_source
from densekit.corpus.readers import json_records
from densekit.errors import InputError
from densekit.files.ids import LONE_SURROGATE, check_id
from densekit.files.text import decoded_lines

Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class BeirDataset:
    """The judged queries of one split, and where the corpus is."""

    root: Path
    split: str
    corpus_path: Path | None
    queries: dict[str, str]
    qrels: Qrels
    warnings: tuple[str, ...] = ()
    qrels_path: Path | None = None  # the split's judgements file, when read from one
    label: str | None = None  # its name when it is not its folder's (an ir_datasets id)

    @property
    def name(self) -> str:
        return self.label or self.root.name


def _find(root: Path, stem: str) -> Path | None:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _require(root: Path, stem: str, what: str) -> Path:
    found = _find(root, stem)
    if found is None:
        raise InputError(f"{root}: no {stem} (or {stem}.gz); {what}")
    return found


def read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for where, record in json_records(path):
        if "_id" not in record or "text" not in record:
            raise InputError(f"{where}: a query needs the fields _id and text")
        query_id = check_id(record["_id"], f"{where}: field '_id'")
        text = record["text"]
        if not isinstance(text, str) or LONE_SURROGATE.search(text):
            raise InputError(f"{where}: the text of query {query_id!r} is not a string of text")
        queries[query_id] = text
    return queries


def read_qrels(path: Path) -> Qrels:
    """Read a BEIR qrels TSV (``query-id corpus-id score``, header optional)."""
    qrels: Qrels = {}
    for number, line in decoded_lines(path):
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) not in (3, 4):
            fields = line.split()  # TREC qrels are often space-separated
        if not line.strip() or (number == 1 and fields[0] == "query-id"):
            continue
        where = f"{path}:{number}"
        if len(fields) == 4:  # TREC layout: qid iteration docid relevance
            fields = [fields[0], fields[2], fields[3]]
        if len(fields) != 3:
            raise InputError(f"{where}: expected query-id, corpus-id, score separated by tabs")
        query_id, doc_id, score = fields
        try:
            relevance = int(score)
        except ValueError:
            raise InputError(f"{where}: relevance {score!r} is not an integer") from None
        qrels.setdefault(query_id, {})[doc_id] = relevance
    return qrels


def load_beir(root: str | Path, split: str = "test") -> BeirDataset:
    """Load a split's judged queries; qrels of queries without text are dropped (warned).

    ``root`` may be an ir_datasets id, ``irds:beir/scifact/test``: its queries and qrels (the
    id names the split), and for a build, the documents of the id without the split when it
    has none of its own."""
    if ir_datasets_source.is_irds(root):
        named = str(root).rsplit("/", 1)[-1]
        if split not in ("test", named):  # "test" is every caller's default
            raise InputError(
                f"{root}: an ir_datasets id names its split ({named!r}); for split {split!r} "
                f"name its id instead of --split"
            )
        return _load_irds(str(root))
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset directory (expected BEIR layout)")
    corpus = _find(root, "corpus.jsonl")  # needed only to build a collection
    queries_path = _require(root, "queries.jsonl", "a BEIR dataset has queries.jsonl")
    qrels_path = _find(root / "qrels", f"{split}.tsv")
    if qrels_path is None:
        available = sorted(p.name.split(".")[0] for p in (root / "qrels").glob("*.tsv*"))
        raise InputError(
            f"{root}: no qrels for split {split!r}; available: {', '.join(available) or 'none'}"
        )
    all_queries = read_queries(queries_path)
    qrels = read_qrels(qrels_path)
    unknown = sorted(set(qrels) - set(all_queries))
    warnings = []
    if unknown:
        warnings.append(
            f"{qrels_path}: {len(unknown)} judged queries are not in {queries_path.name} "
            f"(e.g. {', '.join(unknown[:3])}); they are left out"
        )
        for query_id in unknown:
            del qrels[query_id]
    queries = {query_id: all_queries[query_id] for query_id in qrels}
    return BeirDataset(root, split, corpus, queries, qrels, tuple(warnings), qrels_path)


def _load_irds(name: str) -> BeirDataset:
    judged = ir_datasets_source.qrels(name)
    known = ir_datasets_source.queries(name)
    unknown = sorted(set(judged) - set(known))
    for query_id in unknown:
        del judged[query_id]
    warnings = (
        (f"{name}: {len(unknown)} judged queries have no text; they are left out",)
        if unknown
        else ()
    )
    corpus = name
    if not ir_datasets_source.open_dataset(name).has_docs():
        corpus = name.rsplit("/", 1)[0]  # beir/scifact/test: the documents are beir/scifact's
    return BeirDataset(
        root=Path(name),
        split=name.rsplit("/", 1)[-1],
        corpus_path=Path(corpus),
        queries={query_id: known[query_id] for query_id in judged},
        qrels=judged,
        warnings=warnings,
        label=ir_datasets_source.dataset_id(name),
    )
