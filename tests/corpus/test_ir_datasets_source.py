"""Datasets by ir_datasets id: a collection indexed from `irds:ID`, evaluated on its queries
and judgements, and its run scored, across processes, with a dataset registered from local
files (what ir_datasets reads from ~/.ir_datasets once a collection is there)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from densekit.corpus.ir_datasets_source import documents
from densekit.errors import InputError
from densekit.evaluate.beir import load_beir

DOCUMENTS = [
    ("d1", "Vitamin D", "Vitamin D deficiency raises the risk of fractures.", "2019"),
    ("d2", "Statins", "Statins lower cholesterol in adults.", "2021"),
    ("d3", "Coffee", "Coffee drinking and heart disease.", "2020"),
]


REGISTER = """
import sys
from typing import NamedTuple
import ir_datasets
from ir_datasets.datasets.base import Dataset
from ir_datasets.formats import JsonlDocs, JsonlQueries, TrecQrels, TrecScoredDocs
from ir_datasets.util import LocalDownload

class PaperDoc(NamedTuple):
    doc_id: str
    title: str
    text: str
    year: str
    def default_text(self):
        return f"{self.title} {self.text}"

def register(folder):
    docs = JsonlDocs(LocalDownload(f"{folder}/docs.jsonl"), doc_cls=PaperDoc,
                     mapping={"doc_id": "id", "title": "title", "text": "text", "year": "year"})
    queries = JsonlQueries(LocalDownload(f"{folder}/queries.jsonl"),
                           mapping={"query_id": "id", "text": "text"})
    qrels = TrecQrels(LocalDownload(f"{folder}/qrels.txt"), {0: "no", 1: "yes"})
    run = TrecScoredDocs(LocalDownload(f"{folder}/run.txt"))
    ir_datasets.registry.register("densekit-tiny", Dataset(docs))
    ir_datasets.registry.register("densekit-tiny/test", Dataset(queries, qrels, run))
"""


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> Path:
    """The dataset's files, and a module that registers them (imported by sitecustomize in
    the subprocesses, by this test in its own)."""
    folder = tmp_path_factory.mktemp("irds")
    (folder / "docs.jsonl").write_text(
        "".join(
            json.dumps({"id": i, "title": t, "text": x, "year": y}) + "\n"
            for i, t, x, y in DOCUMENTS
        )
    )
    queries = [("q1", "vitamin D fractures"), ("q2", "cholesterol statins")]
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in queries)
    )
    (folder / "qrels.txt").write_text("q1 0 d1 1\nq2 0 d2 1\n")
    (folder / "run.txt").write_text(
        "q1 Q0 d1 1 2.0 bm25\nq1 Q0 d3 2 1.0 bm25\nq2 Q0 d3 1 3.0 bm25\n"
    )
    (folder / "tiny_irds.py").write_text(REGISTER)
    (folder / "sitecustomize.py").write_text(
        f"import tiny_irds\ntiny_irds.register({str(folder)!r})\n"
    )
    sys.path.insert(0, str(folder))
    import tiny_irds  # type: ignore[import-not-found]

    tiny_irds.register(str(folder))
    return folder


def densekit(folder: Path, *args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "densekit.cli.main", *map(str, args)]
    environment = {**__import__("os").environ, "PYTHONPATH": str(folder)}
    return subprocess.run(command, capture_output=True, text=True, check=False, env=environment)


def test_documents_keep_titles_text_and_other_fields_as_metadata(registered: Path) -> None:
    read = list(documents("irds:densekit-tiny"))
    assert [(d.id, d.title, d.metadata) for d in read] == [
        ("d1", "Vitamin D", {"year": "2019"}),
        ("d2", "Statins", {"year": "2021"}),
        ("d3", "Coffee", {"year": "2020"}),
    ]
    assert read[0].text == DOCUMENTS[0][2] and read[0].source == "irds:densekit-tiny: document 1"


def test_a_split_id_gives_queries_qrels_and_the_corpus_of_its_parent(registered: Path) -> None:
    data = load_beir("irds:densekit-tiny/test")
    assert data.name == "densekit-tiny/test" and data.split == "test"
    assert data.queries == {"q1": "vitamin D fractures", "q2": "cholesterol statins"}
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    assert str(data.corpus_path) == "irds:densekit-tiny"


def test_index_eval_and_run_by_id_across_processes(registered: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    built = densekit(registered, "index", "irds:densekit-tiny", "--out", out,
                     "--retriever", "bm25", "--quiet")  # fmt: skip
    assert built.returncode == 0, built.stderr
    scored = densekit(registered, "eval", "irds:densekit-tiny/test", "--collection", out,
                      "--metrics", "R@10,nDCG@10", "--json")  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    report = json.loads(scored.stdout)
    assert report["dataset"] == "densekit-tiny/test" and report["metrics"]["R@10"] == 1.0
    run = densekit(registered, "eval", "irds:densekit-tiny/test", "--run",
                   "irds:densekit-tiny/test", "--metrics", "R@10", "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["metrics"]["R@10"] == 0.5  # q1 found d1, q2 did not
    filtered = densekit(registered, "search", out, "vitamin", "--filter", "year = '2019'",
                        "--json")  # fmt: skip
    assert [hit["id"] for hit in json.loads(filtered.stdout)["hits"]] == ["d1"]


def test_unknown_ids_and_missing_parts_are_refused_with_what_there_is(registered: Path) -> None:
    with pytest.raises(InputError, match="no dataset 'densekit-tiny/tset'; did you mean"):
        load_beir("irds:densekit-tiny/tset")
    with pytest.raises(InputError, match="has no qrels \\(it has docs\\)"):
        load_beir("irds:densekit-tiny")
    with pytest.raises(InputError, match="names its split \\('test'\\); for split 'dev'"):
        load_beir("irds:densekit-tiny/test", "dev")
