"""`densekit search --filter --fields` and `eval --filter`, as a user runs them: the collection
indexed by one process, searched by the next."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PAPERS = [
    {"_id": "p1", "title": "Dense retrieval", "text": "Dense retrieval with dual encoders.",
     "year": 2020, "venue": "sigir", "tags": ["dense", "ir"]},
    {"_id": "p2", "title": "BM25 revisited", "text": "Lexical retrieval with BM25 weights.",
     "year": 2009, "venue": "ecir", "tags": ["lexical", "ir"]},
    {"_id": "p3", "title": "Retrieval for RAG", "text": "Retrieval augmented generation.",
     "year": 2023, "venue": "acl", "tags": ["dense", "nlp"]},
    {"_id": "p4", "title": "Sparse retrieval", "text": "Learned sparse retrieval with SPLADE.",
     "year": 2021, "venue": "sigir", "tags": ["sparse", "ir"]},
]  # fmt: skip


def densekit(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "densekit.cli.main", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def papers(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("papers")
    corpus = folder / "papers.jsonl"
    corpus.write_text("".join(json.dumps(paper) + "\n" for paper in PAPERS), encoding="utf-8")
    built = densekit("index", corpus, "--out", folder / "c", "--retriever", "bm25", "--quiet")
    assert built.returncode == 0, built.stderr
    return folder / "c"


def test_search_filters_and_shows_metadata_fields_in_the_next_process(papers: Path) -> None:
    found = densekit(
        "search", papers, "retrieval", "--filter", "year >= 2020 and venue = 'sigir'",
        "--fields", "id,score,year,tags", "--json",
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert sorted(hit["id"] for hit in hits) == ["p1", "p4"]
    assert set(hits[0]) == {"id", "score", "metadata"}
    by_id = {hit["id"]: hit["metadata"] for hit in hits}
    assert by_id["p4"] == {"year": 2021, "tags": ["sparse", "ir"]}
    shown = densekit("search", papers, "retrieval", "--filter", "tags = 'nlp'", "--fields",
                     "id,year,venue")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ["  1. p3  year=2023  venue=acl"]


def test_json_hits_carry_their_metadata_by_default(papers: Path) -> None:
    found = densekit("search", papers, "BM25", "--json")
    assert json.loads(found.stdout)["hits"][0]["metadata"] == {
        "year": 2009,
        "venue": "ecir",
        "tags": ["lexical", "ir"],
    }


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("year >= '2020'", "--filter: year holds numbers, never text"),
        ("venu = 'acl'", "--filter: no document has a field venu; their fields: tags, venue, year"),
        ("year >= 2020 and", "--filter: column 17: expected a field name"),
    ],
)
def test_bad_filters_exit_2_with_the_place_and_no_traceback(
    papers: Path, where: str, message: str
) -> None:
    found = densekit("search", papers, "retrieval", "--filter", where)
    assert found.returncode == 2
    assert message in found.stderr and "Traceback" not in found.stderr


def test_eval_filters_the_searched_documents(papers: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "data"
    (dataset / "qrels").mkdir(parents=True)
    (dataset / "corpus.jsonl").write_text("")
    (dataset / "queries.jsonl").write_text('{"_id": "q1", "text": "sparse retrieval"}\n')
    (dataset / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tp4\t1\n")
    common = ["eval", dataset, "--collection", papers, "--metrics", "R@10", "--json"]
    kept = densekit(*common, "--filter", "venue = 'sigir'")
    struck = densekit(*common, "--filter", "venue != 'sigir'")
    assert kept.returncode == 0 and struck.returncode == 0, kept.stderr + struck.stderr
    assert json.loads(kept.stdout)["metrics"]["R@10"] == 1.0
    assert json.loads(struck.stdout)["metrics"]["R@10"] == 0.0
