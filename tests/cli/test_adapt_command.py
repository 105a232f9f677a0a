"""`densekit adapt` as a user runs it: train and store, search applies it, --remove undoes it,
--no-store with --out, and mistakes that exit 2 with a message and no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import DOCUMENTS, write_jsonl
from required import require
from test_cli import run_cli

from densekit.cli.main import main

QUERY = "vitamin D and bones"
QUICK = ["--epochs", "3", "--batch", "2", "--lr", "0.05"]


# Tiny maps: one torch thread is fastest, and spares a busy machine.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """DOCUMENTS as a BEIR dataset with train judgements (q1 -> d3, q2 -> d2) and its static
    model collection, built once for the module (each test gets a copy)."""
    require("static_model")
    root = tmp_path_factory.mktemp("adapt-cli")
    dataset = root / "dataset"
    (dataset / "qrels").mkdir(parents=True)
    write_jsonl(dataset / "corpus.jsonl", DOCUMENTS)
    write_jsonl(
        dataset / "queries.jsonl",
        [{"_id": "q1", "text": "vitamin D and bones"}, {"_id": "q2", "text": "loyal dogs"}],
    )
    (dataset / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\n", encoding="utf-8"
    )
    flags = ["--model", "static", "--quiet", "--no-cache"]
    assert main(["index", str(dataset / "corpus.jsonl"), "--out", str(root / "c"), *flags]) == 0
    return dataset, root / "c"


@pytest.fixture
def dataset(built: tuple[Path, Path], tmp_path: Path) -> Path:
    return shutil.copytree(built[0], tmp_path / "dataset")


@pytest.fixture
def collection(built: tuple[Path, Path], tmp_path: Path) -> Path:
    return shutil.copytree(built[1], tmp_path / "c")


def search(capsys, collection: Path, query: str = QUERY) -> list[tuple[str, float]]:
    code, out, err = run_cli(capsys, "search", collection, query, "-k", "5", "--json")
    assert code == 0, err
    return [(hit["id"], hit["score"]) for hit in json.loads(out)["hits"]]


def adapter_info(capsys, collection: Path) -> dict | None:
    code, out, err = run_cli(capsys, "info", collection, "--json")
    assert code == 0, err
    return json.loads(out)["adapter"]


def test_adapt_stores_an_adapter_that_search_applies_and_remove_undoes(
    capsys, collection: Path, dataset: Path
) -> None:
    plain = search(capsys, collection)
    args = ["adapt", dataset, "--collection", collection, "--rank", "4", *QUICK, "--json"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    report = json.loads(out)
    assert report["kind"] == "residual" and report["split"] == "train"
    assert report["pairs"] == 2 and report["queries"] == 2 and report["steps"] == 3
    assert report["spec"] == {"form": "low-rank", "rank": 4, "sides": "query"}
    assert report["training"]["epochs"] == 3 and report["training"]["learning_rate"] == 0.05
    stored = Path(report["stored_in"])
    assert stored.parent == collection / "adapters" and stored.name.startswith("residual-")
    assert (stored / "adapter.json").is_file() and "saved_to" not in report
    described = adapter_info(capsys, collection)
    assert described is not None and described["kind"] == "residual"
    assert described["spec"]["rank"] == 4 and described["trained"]["pairs"] == 2
    code, out, _ = run_cli(capsys, "info", collection)
    assert code == 0 and "residual (form low-rank, rank 4, sides query)" in out

    adapted = search(capsys, collection)
    assert [s for _, s in adapted] != [s for _, s in plain]  # the queries are mapped

    code, out, err = run_cli(capsys, "adapt", "--collection", collection, "--remove")
    assert code == 0 and "adapter removed" in out, err
    assert adapter_info(capsys, collection) is None
    assert not any((collection / "adapters").iterdir())
    assert search(capsys, collection) == plain
    code, out, _ = run_cli(capsys, "adapt", "--collection", collection, "--remove")
    assert code == 0 and "no adapter to remove" in out


def test_adapt_a_lexical_bridge_prints_what_it_did(capsys, collection: Path, dataset: Path) -> None:
    args = ["adapt", dataset, "--collection", collection, "--kind", "lexsem", *QUICK]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert out.startswith("lexsem trained on 2 pairs of 2 queries in ")
    assert f"stored in {collection}/adapters/lexsem-" in out
    described = adapter_info(capsys, collection)
    assert described is not None and described["kind"] == "lexsem"
    assert described["spec"] == {"weights": "slr"}
    assert search(capsys, collection)  # searching reads the stored tokenizer


def test_a_second_adapter_replaces_the_first(capsys, collection: Path, dataset: Path) -> None:
    base = ["adapt", dataset, "--collection", collection, *QUICK, "--json"]
    code, out, err = run_cli(capsys, *base, "--rank", "2")
    assert code == 0, err
    first = Path(json.loads(out)["stored_in"])
    code, out, err = run_cli(capsys, *base, "--form", "key-value", "--rank", "3", "--sides", "both")
    assert code == 0, err
    second = Path(json.loads(out)["stored_in"])
    assert not first.exists() and second.is_dir()
    described = adapter_info(capsys, collection)
    assert described is not None
    assert described["spec"] == {"form": "key-value", "rank": 3, "sides": "both"}
    assert search(capsys, collection)  # documents mapped through the exact index


def test_no_store_saves_the_adapter_only_to_out(
    capsys, collection: Path, dataset: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "saved-adapter"
    args = ["adapt", dataset, "--collection", collection, *QUICK, "--no-store", "--out", out_dir]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert f"stored in {out_dir}" in out
    card = json.loads((out_dir / "adapter.json").read_text())
    assert card["kind"] == "residual" and card["trained"]["split"] == "train"
    assert adapter_info(capsys, collection) is None
    assert not (collection / "adapters").exists() or not any((collection / "adapters").iterdir())
    code, _, err = run_cli(capsys, *args)  # the folder is there now: not overwritten
    assert code == 2 and "Traceback" not in err and str(out_dir) in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--kind", "lexsem", "--weights", "llr"], "use statistical weights (slr)"),
        (["--no-store"], "--no-store keeps nothing without --out"),
        (["--lr", "0"], "learning_rate and temperature must be positive"),
        (["--split", "dev"], "no qrels for split 'dev'; available: train"),
    ],
)
def test_mistakes_exit_2_with_a_message_and_store_nothing(
    capsys, collection: Path, dataset: Path, extra: list[str], message: str
) -> None:
    code, _, err = run_cli(capsys, "adapt", dataset, "--collection", collection, *QUICK, *extra)
    assert code == 2 and message in err and "Traceback" not in err
    assert err.startswith("densekit: error: ")
    assert adapter_info(capsys, collection) is None


def test_mistakes_without_a_collection_to_train(capsys, dataset: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "adapt", "--collection", tmp_path / "c")
    assert code == 2 and "give the DATASET folder" in err
    code, _, err = run_cli(capsys, "adapt", dataset, "--collection", tmp_path / "nowhere")
    assert code == 2 and "no such collection" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "adapt", "--collection", tmp_path / "nowhere", "--remove")
    assert code == 2 and "no such collection" in err
    with pytest.raises(SystemExit) as exited:
        run_cli(capsys, "adapt", dataset, "--collection", tmp_path / "c", "--rank", "0")
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        run_cli(capsys, "adapt", dataset, "--collection", tmp_path / "c", "--kind", "mlp")
