"""End to end with the real model: build and evaluate a SciFact subset through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import BUNDLED_SCIFACT, write_scifact_subset

from densekit.cli.main import main
from densekit.evaluate import evaluate, load_beir
from densekit.retrieve import Collection

pytestmark = pytest.mark.slow

QUERIES = 40
DISTRACTORS = 400


@pytest.fixture(scope="module")
def scifact_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first judged test queries, their relevant abstracts, and a few hundred others."""
    query_ids = sorted(load_beir(BUNDLED_SCIFACT).qrels)[:QUERIES]
    root = tmp_path_factory.mktemp("scifact-subset")
    return write_scifact_subset(root, {"test": query_ids}, DISTRACTORS)


@pytest.fixture(scope="module")
def built(scifact_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collections") / "scifact"
    code = main(["index", str(scifact_subset / "corpus.jsonl"), "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_all_three_retrievers_rank_relevant_abstracts_high(built: Path, scifact_subset: Path):
    scores = {
        retriever: evaluate(scifact_subset, collection=built, retriever=retriever).metrics
        for retriever in ("dense", "bm25", "hybrid")
    }
    for retriever, metrics in scores.items():
        assert metrics["nDCG@10"] > 0.6, (retriever, metrics)
        assert metrics["R@100"] > 0.85, (retriever, metrics)
    assert scores["hybrid"]["nDCG@10"] >= min(s["nDCG@10"] for s in scores.values())


def test_search_cli_and_the_collections_model(built: Path, capsys) -> None:
    assert main(["search", str(built), "vitamin D and cancer", "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert len(hits) == 3 and hits[0]["score"] >= hits[-1]["score"]
    info = Collection(built).info()
    assert info["model"]["name"] == "minilm" and info["model"]["dimension"] == 384
    assert info["stats"]["encode_docs_per_second"] > 0


@pytest.fixture(scope="module")
def finetuned_minilm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM with slightly changed weights: loads fine, but is another model."""
    import torch
    from sentence_transformers import SentenceTransformer

    from densekit.encode import resolve_model

    model = SentenceTransformer(resolve_model("minilm").location, device="cpu")
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    out = tmp_path_factory.mktemp("models") / "minilm-finetuned"
    model.save(str(out))
    return out


def test_eval_and_search_with_another_model_are_refused(
    built: Path, scifact_subset: Path, finetuned_minilm: Path, capsys
) -> None:
    code = main(
        ["eval", str(scifact_subset), "--collection", str(built), "--model", str(finetuned_minilm)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "was built with model 'minilm'" in err and "Traceback" not in err
    code = main(["search", str(built), "a query", "--model", str(finetuned_minilm)])
    assert code == 2 and "not comparable" in capsys.readouterr().err


def test_query_with_a_differently_prompted_model_is_refused(built: Path, capsys) -> None:
    from dataclasses import replace

    from densekit.encode import load_encoder, resolve_model
    from densekit.errors import ModelMismatchError

    collection = Collection(built)
    prompted = load_encoder(replace(resolve_model("minilm"), query_prompt="query: "))
    with pytest.raises(ModelMismatchError, match="was built with model 'minilm'"):
        collection = collection.with_encoder(prompted)
