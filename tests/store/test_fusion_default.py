"""A tuned fusion in the manifest: written whole, typed like every field, and a collection of
the first format tuned stays one (its old fusion vocabulary read as the fusion it replaced)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import write_jsonl
from required import require

import densekit
from densekit.cli.main import main
from densekit.retrieve import FusionConfig

FORMAT_1 = Path(__file__).resolve().parents[1] / "data" / "collection-format-1"


@pytest.fixture
def tuned_format_1(tmp_path: Path) -> tuple[Path, densekit.FusionTuning]:
    """A copy of the format-1 collection, tuned on 24 queries judged on its 12 documents."""
    require("static_model")
    copy = tmp_path / "collection"
    shutil.copytree(FORMAT_1 / "collection", copy)
    documents = [json.loads(line) for line in (FORMAT_1 / "corpus.jsonl").read_text().splitlines()]
    data = tmp_path / "judged"
    (data / "qrels").mkdir(parents=True)
    queries = [
        {"_id": f"{kind}-{doc['_id']}", "text": doc[kind]}
        for doc in documents
        for kind in ("title", "text")
    ]
    write_jsonl(data / "queries.jsonl", queries)
    judged = "".join(f"{q['_id']}\t{q['_id'].split('-')[1]}\t1\n" for q in queries)
    (data / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + judged)
    return copy, densekit.tune_fusion(data, copy, folds=3)


def test_a_tuned_format_1_collection_becomes_format_3(tuned_format_1) -> None:
    # Releases that cannot read the tuning record refuse the collection by its version.
    copy, tuning = tuned_format_1
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["format_version"] == 3
    old_default = FusionConfig.hybrid("convex", alpha=0.4)  # read from {"alpha": 0.4, ...}
    assert tuning.previous == old_default
    assert manifest["fusion_tuning"]["previous"] == old_default.to_dict()
    assert FusionConfig.stored(manifest["fusion"]) == tuning.fusion
    with densekit.open(copy) as collection:
        assert collection.searcher().fusion == tuning.fusion
        assert collection.search("cholesterol", k=3)


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda t: t.update(cv_mean="high"), "'fusion_tuning.cv_mean' is str 'high'"),
        (lambda t: t.update(queries=-3), "'fusion_tuning.queries' is int '-3'"),
        (lambda t: t.update(fold_choices={}), "'fusion_tuning.fold_choices' is dict"),
        (lambda t: t.pop("qrels_sha256"), "field 'fusion_tuning.qrels_sha256' is missing"),
        (lambda t: t.update(extra=1), "unknown field 'fusion_tuning.extra'"),
    ],
)
def test_a_damaged_record_is_refused_by_field(tuned_format_1, capsys, edit, said) -> None:
    copy, _ = tuned_format_1
    path = copy / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest["fusion_tuning"])
    path.write_text(json.dumps(manifest))
    assert main(["info", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("densekit: error: ") and err.count("\n") == 1
    assert "corrupt manifest" in err and said in err
