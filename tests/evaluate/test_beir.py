from __future__ import annotations

from pathlib import Path

import pytest
from conftest import shared_dataset, write_jsonl

from densekit.errors import InputError
from densekit.evaluate import load_beir, read_qrels, read_run, write_run


def test_loads_split_queries_and_graded_qrels(tiny_beir: Path) -> None:
    data = load_beir(tiny_beir)
    assert data.queries == {"q1": "vitamin D and bones", "q2": "loyal dogs"}
    assert data.qrels["q1"] == {"d3": 1, "d5": 2}
    assert data.warnings == ()


def test_judged_queries_without_text_are_dropped_with_a_warning(tiny_beir: Path) -> None:
    with (tiny_beir / "qrels" / "test.tsv").open("a") as handle:
        handle.write("q9\td1\t1\nq8\td1\t1\n")
    data = load_beir(tiny_beir)
    assert set(data.qrels) == {"q1", "q2"}
    assert "2 judged queries are not in queries.jsonl" in data.warnings[0]


def test_missing_split_and_bad_qrels_lines(tiny_beir: Path) -> None:
    with pytest.raises(InputError, match="no qrels for split 'dev'; available: test"):
        load_beir(tiny_beir, "dev")
    bad = tiny_beir / "qrels" / "test.tsv"
    bad.write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(InputError, match=r"test\.tsv:2: relevance 'high' is not an integer"):
        read_qrels(bad)
    write_jsonl(tiny_beir / "queries.jsonl", [{"_id": "q1"}])
    with pytest.raises(InputError, match=r"queries\.jsonl:1: a query needs"):
        load_beir(tiny_beir)


def test_run_files_round_trip_and_bad_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    write_run(path, {"q1": [("d1", 2.5), ("d2", 1.0)], "q2": [("d3", 0.1)]}, tag="t")
    assert path.read_text().splitlines()[0] == "q1 Q0 d1 1 2.500000 t"
    assert read_run(path) == {"q1": {"d1": 2.5, "d2": 1.0}, "q2": {"d3": 0.1}}
    path.write_text("q1 Q0 d1 1 2.5 t\nq1 Q0 d2 2 x t\n")
    with pytest.raises(InputError, match=r"run\.trec:2: score 'x' is not a number"):
        read_run(path)


@pytest.mark.parametrize("name", ["scifact", "limit-small", "cranfield"])
def test_shared_datasets_load(name: str) -> None:
    data = load_beir(shared_dataset(name))
    assert data.queries and data.qrels
    assert set(data.qrels) <= set(data.queries)


def test_space_separated_trec_qrels(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt"
    path.write_text("401 0 FBIS3-10082 1\n401 0 FBIS3-10169 0\n")
    assert read_qrels(path) == {"401": {"FBIS3-10082": 1, "FBIS3-10169": 0}}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"_id": 1, "text": "q"}, r"queries\.jsonl:1: field '_id': id 1 is a number"),
        ({"_id": "q\t1", "text": "q"}, "holds a control character"),
        ({"_id": "q1", "text": None}, "the text of query 'q1' is not a string of text"),
    ],
)
def test_query_ids_follow_the_id_rules_and_texts_are_text(
    tiny_beir: Path, record: dict, message: str
) -> None:
    write_jsonl(tiny_beir / "queries.jsonl", [record])
    with pytest.raises(InputError, match=message):
        load_beir(tiny_beir)
