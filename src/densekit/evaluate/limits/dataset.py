"""A LIMIT-style dataset (Weller et al.): people who like things, queries "Who likes X?", built
so that its relevance matrix needs as many top-k sets as possible.

The paper's construction: the relevant sets are every k-subset of the first n documents, n the
smallest with C(n, k) >= the number of queries (46 documents for 1,000 pairs), taken in
lexicographic order; each query asks about one thing of its own, liked by exactly its k people;
every person then likes other things (never a query's thing) up to ``likes`` in all. Documents
past the first n (the large version) like only such other things: none is relevant to any
query. The things and names come from densekit's own vocabulary (``likes.txt``, ``names.txt``)
and are drawn by ``seed``, so a set is reproducible and two seeds give different sets.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import random
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from densekit.errors import InputError
from densekit.files.durability import publish_folder, refuse_to_replace

CARD = "densekit_queries.json"


@dataclass(frozen=True)
class LimitSpec:
    """The shape of a LIMIT-style set; the defaults are the paper's small version."""

    docs: int = 46
    queries: int = 1000
    k: int = 2  # documents relevant to each query
    likes: int = 45  # things each person likes, at least (a relevant person may like more)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("docs", "queries", "k", "likes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"--{name} must be a positive whole number, got {value!r}")


@dataclass(frozen=True)
class LimitDataset:
    corpus: list[tuple[str, str]]  # (id: the person's name, text)
    queries: list[tuple[str, str]]  # (id, text)
    qrels: list[tuple[str, str]]  # (query id, document id)
    judged_documents: int  # the n documents every relevant set is drawn from
    likes: list[list[str]]  # per document, the things its person likes


@functools.cache
def vocabulary() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(things, first names, surnames) of densekit's LIMIT vocabulary."""
    folder = resources.files("densekit.evaluate.limits")

    def lines(name: str) -> list[str]:
        text = folder.joinpath(name).read_text("utf-8")
        return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]

    names = lines("names.txt")
    split = names.index("---")
    return tuple(lines("likes.txt")), tuple(names[:split]), tuple(names[split + 1 :])


def relevant_sets(docs: int, queries: int, k: int) -> tuple[int, list[tuple[int, ...]]]:
    """(n, the first ``queries`` k-subsets of range(n)): n the smallest with C(n, k) >=
    ``queries``."""
    n = k
    while math.comb(n, k) < queries:
        n += 1
    if n > docs:
        raise InputError(
            f"{queries} queries with {k} relevant documents each need {n} documents "
            f"(C({n}, {k}) >= {queries}); give --docs {n} or more, or fewer --queries"
        )
    return n, list(itertools.islice(itertools.combinations(range(n), k), queries))


def generate(spec: LimitSpec) -> LimitDataset:
    things, first_names, surnames = vocabulary()
    if spec.queries >= len(things):
        raise InputError(
            f"--queries {spec.queries}: densekit's vocabulary has {len(things)} things and each "
            f"query needs one of its own (and some are left for people to like); ask for at "
            f"most {len(things) - spec.likes}"
        )
    n, sets = relevant_sets(spec.docs, spec.queries, spec.k)
    rng = random.Random(spec.seed)
    shuffled = list(things)
    rng.shuffle(shuffled)
    asked, others = shuffled[: spec.queries], shuffled[spec.queries :]
    if len(others) < spec.likes:
        raise InputError(
            f"--likes {spec.likes}: only {len(others)} things are left once {spec.queries} "
            "queries have theirs; ask for fewer --likes or --queries"
        )
    likes: list[list[str]] = [[] for _ in range(spec.docs)]
    for thing, people in zip(asked, sets, strict=True):
        for person in people:
            likes[person].append(thing)
    for person in likes:
        person.extend(rng.sample(others, max(spec.likes - len(person), 0)))
        rng.shuffle(person)
    names = _names(spec.docs, first_names, surnames, rng)
    corpus = [
        (name, f"{name} likes {_listed(person)}.")
        for name, person in zip(names, likes, strict=True)
    ]
    queries = [(f"query_{number}", f"Who likes {thing}?") for number, thing in enumerate(asked)]
    qrels = [
        (query_id, names[person])
        for (query_id, _), people in zip(queries, sets, strict=True)
        for person in people
    ]
    return LimitDataset(corpus, queries, qrels, judged_documents=n, likes=likes)


def _listed(things: list[str]) -> str:
    """ "A, B and C"; "A" alone."""
    return things[0] if len(things) == 1 else f"{', '.join(things[:-1])} and {things[-1]}"


def _names(count: int, first: tuple[str, ...], last: tuple[str, ...], rng: random.Random) -> list:
    """``count`` distinct names: first and last names, with a middle initial when the pairs
    alone are too few."""
    pairs = [f"{a} {b}" for a, b in itertools.product(first, last)]
    if count > len(pairs):
        initials = [chr(code) for code in range(ord("A"), ord("Z") + 1)]
        pairs = [f"{a} {i}. {b}" for a, i, b in itertools.product(first, initials, last)]
        if count > len(pairs):
            raise InputError(f"--docs {count}: at most {len(pairs):,} people have distinct names")
    return rng.sample(pairs, count)


def write_limit_dataset(
    spec: LimitSpec, out: str | Path, *, overwrite: bool = False, split: str = "test"
) -> dict:
    """Generate the set of ``spec`` and write it as a BEIR folder (``qrels/<split>.tsv``) at
    ``out``; returns its card."""
    if not split or not split.replace("-", "").replace("_", "").isalnum():
        raise InputError(f"--split must be a plain name such as train or test, got {split!r}")
    out = Path(out)
    refuse_to_replace(out, overwrite)
    data = generate(spec)
    card = {
        "task": "limit",
        **asdict(spec),
        "split": split,
        "judged_documents": data.judged_documents,
        "vocabulary": len(vocabulary()[0]),
    }

    def write(folder: Path) -> None:
        def jsonl(name: str, records: list[dict]) -> None:
            lines = (json.dumps(record, ensure_ascii=False) + "\n" for record in records)
            (folder / name).write_text("".join(lines), encoding="utf-8")

        jsonl("corpus.jsonl", [{"_id": i, "title": "", "text": t} for i, t in data.corpus])
        jsonl("queries.jsonl", [{"_id": i, "text": t} for i, t in data.queries])
        (folder / "qrels").mkdir()
        rows = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t1" for q, d in data.qrels)]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        (folder / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")

    publish_folder(out, write)
    return {"out": str(out), **card}
