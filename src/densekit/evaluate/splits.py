"""Train/test splits of judged queries without leakage between them.

A map trained on (query, relevant document) pairs can learn *which documents get cited*: a
test query whose relevant documents were relevant to training queries too is then easy for
the wrong reason. ``split_by_document`` splits the judged queries so that no test query shares
a relevant document with any training query, and no query text (compared without case and
with whitespace collapsed) appears on both sides.

Queries and their relevant documents form a bipartite graph (a query's text is one more node,
so repeated texts are linked). Its connected components go whole to one side: components are
shuffled by ``seed`` and each one that still fits joins the test side until the share is met,
so nothing is dropped. Only when a component holds more queries than the test side takes,
and the others leave the test side more than ``SHORTFALL`` short of the share, is it cut: some
of its queries go to test, and those of its other queries that share a document with them
are dropped, as the report says.

``seen_breakdown`` tells, for any existing pair of splits, which test queries have all, some
or none of their relevant documents judged relevant in training.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from densekit.corpus import ir_datasets_source
from densekit.errors import InputError
from densekit.evaluate.beir import BeirDataset, Qrels, load_beir
from densekit.files.durability import publish_folder, refuse_to_replace

SplitBy = Literal["document", "query"]
SPLIT_BY: tuple[SplitBy, ...] = ("document", "query")
# How far below the asked test share whole components may leave the test side (a fraction of
# the share) before a component too large for the test side is cut, which drops queries.
SHORTFALL = 0.1
CARD = "densekit_split.json"


def normalised_text(text: str) -> str:
    return " ".join(text.casefold().split())


def positives(judged: dict[str, int]) -> set[str]:
    return {doc for doc, grade in judged.items() if grade > 0}


@dataclass(frozen=True)
class SeenBreakdown:
    """Test queries by how many of their relevant documents are relevant to a training query
    (a test query without a relevant document counts as ``none``), and the test queries whose
    text repeats a training query's."""

    all: tuple[str, ...]
    some: tuple[str, ...]
    none: tuple[str, ...]
    repeated_text: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        return {name: len(ids) for name, ids in asdict(self).items()}


def seen_breakdown(train: Qrels, test: Qrels, texts: dict[str, str] | None = None) -> SeenBreakdown:
    """Which ``test`` queries have all / some / none of their relevant documents seen among
    ``train``'s relevant documents; ``texts`` (query id → text, both sides) finds repeats."""
    seen = set().union(*(positives(judged) for judged in train.values()))
    groups: dict[str, list[str]] = {"all": [], "some": [], "none": []}
    for query_id in sorted(test):
        relevant = positives(test[query_id])
        known = len(relevant & seen)
        side = "none" if known == 0 else "all" if known == len(relevant) else "some"
        groups[side].append(query_id)
    repeated: list[str] = []
    if texts is not None:
        train_texts = {normalised_text(texts[q]) for q in train if q in texts}
        repeated = [
            q for q in sorted(test) if q in texts and normalised_text(texts[q]) in train_texts
        ]
    return SeenBreakdown(
        tuple(groups["all"]), tuple(groups["some"]), tuple(groups["none"]), tuple(repeated)
    )


def load_judged(root: str | Path, splits: Sequence[str] | None = None) -> BeirDataset:
    """The judged queries of several splits as one dataset (default: every qrels file).
    A query judged in two splits keeps every judgement, the higher grade where they differ."""
    if ir_datasets_source.is_irds(root):
        raise InputError(
            f"{root}: splitting reads a BEIR folder, and writes one; an ir_datasets id names "
            "one split already"
        )
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset directory (expected BEIR layout)")
    if splits is None:
        found = sorted({p.name.split(".")[0] for p in (root / "qrels").glob("*.tsv*")})
        if not found:
            raise InputError(f"{root}: no judgements (qrels/*.tsv); splitting needs judged queries")
        splits = found
    if not splits:
        raise InputError("name at least one qrels split to split (e.g. --from-split test)")
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    warnings: list[str] = []
    for name in splits:
        data = load_beir(root, name)
        queries |= data.queries
        warnings += data.warnings
        for query_id, judged in data.qrels.items():
            merged = qrels.setdefault(query_id, {})
            for doc, grade in judged.items():
                merged[doc] = max(grade, merged.get(doc, grade))
    if not qrels:
        raise InputError(
            f"{root}: split(s) {', '.join(splits)} judge no query that queries.jsonl holds; "
            "splitting needs judged queries"
        )
    corpus = data.corpus_path
    return BeirDataset(root, "+".join(splits), corpus, queries, qrels, tuple(warnings))


@dataclass(frozen=True)
class DatasetSplit:
    """The queries of ``source`` in train and test (sorted ids), and those left out."""

    source: BeirDataset
    by: SplitBy
    test_share: float
    seed: int
    train: tuple[str, ...]
    test: tuple[str, ...]
    dropped: tuple[str, ...]
    components: int
    largest_component: int

    def qrels(self, side: Literal["train", "test"]) -> Qrels:
        return {q: self.source.qrels[q] for q in getattr(self, side)}

    def breakdown(self) -> SeenBreakdown:
        return seen_breakdown(self.qrels("train"), self.qrels("test"), self.source.queries)

    def report(self) -> dict:
        judged = len(self.source.qrels)
        return {
            "source": str(self.source.root),
            "from_splits": self.source.split.split("+"),
            "by": self.by,
            "seed": self.seed,
            "test_share": self.test_share,
            "queries": judged,
            "train_queries": len(self.train),
            "test_queries": len(self.test),
            "test_share_reached": round(
                len(self.test) / max(1, len(self.test) + len(self.train)), 4
            ),
            "dropped_queries": len(self.dropped),
            "dropped": list(self.dropped),
            "components": self.components,
            "largest_component": self.largest_component,
            "test_relevant_seen_in_train": self.breakdown().counts(),
        }


def split_by_document(dataset: BeirDataset, test_share: float = 0.3, seed: int = 0) -> DatasetSplit:
    """A split whose test queries share no relevant document, and no text, with a training
    query (see the module's docstring for how)."""
    target = _target(dataset, test_share, seed)
    nodes = _nodes(dataset)
    components = _components(nodes)
    rng = np.random.default_rng(seed)
    test: list[str] = []
    rest: list[list[str]] = []
    for index in rng.permutation(len(components)):
        component = components[index]
        if len(test) + len(component) <= target:
            test += component
        else:
            rest.append(component)
    dropped: list[str] = []
    while target - len(test) > SHORTFALL * target and max(map(len, rest), default=0) > target:
        # Only a component with more queries than the test side takes is cut; missing the
        # share by less than one smaller component costs nothing, dropping queries does.
        rest.sort(key=len)
        taken, left_out, kept = _cut(rest.pop(), nodes, target - len(test), rng)
        test += taken
        dropped += left_out
        rest.append(kept)
    train = [q for component in rest for q in component]
    return _checked(dataset, "document", test_share, seed, train, test, dropped, components)


def split_by_query(dataset: BeirDataset, test_share: float = 0.3, seed: int = 0) -> DatasetSplit:
    """A plain random split of the queries (the usual one, leaks and all), for comparison."""
    target = _target(dataset, test_share, seed)
    queries = sorted(dataset.qrels)
    order = np.random.default_rng(seed).permutation(len(queries))
    test = [queries[i] for i in order[:target]]
    train = [queries[i] for i in order[target:]]
    components = _components(_nodes(dataset))
    return _checked(dataset, "query", test_share, seed, train, test, [], components)


def split_dataset(
    dataset: BeirDataset, by: SplitBy, test_share: float = 0.3, seed: int = 0
) -> DatasetSplit:
    if by not in SPLIT_BY:
        raise InputError(f"--by must be one of {', '.join(SPLIT_BY)}, got {by!r}")
    splitter = split_by_document if by == "document" else split_by_query
    return splitter(dataset, test_share, seed)


def write_split(split: DatasetSplit, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write a BEIR folder: the corpus (hard-linked where possible, else copied), the split's
    queries, qrels/train.tsv and qrels/test.tsv, and the report as ``densekit_split.json``."""
    out = Path(out)
    if split.source.root.resolve().is_relative_to(out.resolve()):
        raise InputError(
            f"{split.source.root} lies inside {out}, which would be replaced; pick another --out"
        )
    refuse_to_replace(out, overwrite)
    corpus = split.source.corpus_path

    def write(folder: Path) -> None:
        if corpus is not None:
            _link_or_copy(corpus, folder / corpus.name)
        kept = sorted(split.train + split.test)
        with (folder / "queries.jsonl").open("w", encoding="utf-8") as handle:
            for query_id in kept:
                record = {"_id": query_id, "text": split.source.queries[query_id]}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        (folder / "qrels").mkdir()
        for side in ("train", "test"):
            lines = ["query-id\tcorpus-id\tscore"]
            for query_id, judged in split.qrels(side).items():
                lines += [f"{query_id}\t{doc}\t{grade}" for doc, grade in judged.items()]
            (folder / "qrels" / f"{side}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        card = json.dumps(split.report(), indent=2, ensure_ascii=False)
        (folder / CARD).write_text(card + "\n", encoding="utf-8")

    publish_folder(out, write)
    return out


def _target(dataset: BeirDataset, test_share: float, seed: int) -> int:
    if isinstance(test_share, bool) or not isinstance(test_share, (int, float)):
        raise InputError(f"--test-share must be a number between 0 and 1, got {test_share!r}")
    if not 0 < test_share < 1:
        raise InputError(f"--test-share must be between 0 and 1 (exclusive), got {test_share}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"--seed must be a whole number >= 0, got {seed!r}")
    count = len(dataset.qrels)
    if count < 2:
        raise InputError(
            f"{dataset.root}: {count} judged queries in split(s) {dataset.split}; "
            "a train/test split needs at least 2"
        )
    return min(count - 1, max(1, round(test_share * count)))


def _nodes(dataset: BeirDataset) -> dict[str, set[str]]:
    """Each judged query's graph neighbours: its relevant documents and its text."""
    return {
        query_id: {f"d:{doc}" for doc in positives(judged)}
        | {f"t:{normalised_text(dataset.queries[query_id])}"}
        for query_id, judged in dataset.qrels.items()
    }


def _components(nodes: dict[str, set[str]]) -> list[list[str]]:
    """Queries linked through shared nodes, each component sorted, in a fixed order."""
    parent: dict[str, str] = {}

    def root(item: str) -> str:
        while parent.setdefault(item, item) != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for query_id, linked in nodes.items():
        for node in linked:
            parent[root(f"q:{query_id}")] = root(node)
    groups: dict[str, list[str]] = {}
    for query_id in sorted(nodes):
        groups.setdefault(root(f"q:{query_id}"), []).append(query_id)
    return sorted(groups.values())


def _cut(
    component: list[str], nodes: dict[str, set[str]], need: int, rng: np.random.Generator
) -> tuple[list[str], list[str], list[str]]:
    """Move ``need`` queries of a component to test, those least linked to the others first;
    the rest that share a node with them are dropped. Returns (test, dropped, train)."""
    by_node: dict[str, set[str]] = {}
    for query_id in component:
        for node in nodes[query_id]:
            by_node.setdefault(node, set()).add(query_id)
    degree = {q: len(set().union(*(by_node[n] for n in nodes[q]))) for q in component}
    ties = rng.random(len(component))
    order = sorted(range(len(component)), key=lambda i: (degree[component[i]], ties[i]))
    taken = sorted(component[i] for i in order[:need])
    test_nodes = set().union(*(nodes[q] for q in taken))
    chosen = set(taken)
    dropped = [q for q in component if q not in chosen and nodes[q] & test_nodes]
    kept = [q for q in component if q not in chosen and not nodes[q] & test_nodes]
    return taken, dropped, kept


def _checked(
    dataset: BeirDataset,
    by: SplitBy,
    test_share: float,
    seed: int,
    train: list[str],
    test: list[str],
    dropped: list[str],
    components: list[list[str]],
) -> DatasetSplit:
    if not train or not test:
        raise InputError(
            f"{dataset.root}: the judgements link the queries of split(s) {dataset.split} so "
            "closely that no document-disjoint split keeps queries on both sides; "
            "compare with --by query"
        )
    return DatasetSplit(
        source=dataset,
        by=by,
        test_share=test_share,
        seed=seed,
        train=tuple(sorted(train)),
        test=tuple(sorted(test)),
        dropped=tuple(sorted(dropped)),
        components=len(components),
        largest_component=max(len(c) for c in components),
    )


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link costs no space and shares nothing mutable a split writes; across file
    systems (or where links are refused) the corpus is copied."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
