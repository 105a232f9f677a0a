"""`densekit train-reranker` as a user runs it: a model that a pipeline can load, and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from required import require
from test_cli import judged_static_collection, run_cli

require("datasets")


def test_train_then_rerank_with_the_model(capsys, tiny_beir: Path, tmp_path: Path) -> None:
    collection, model = tmp_path / "c", tmp_path / "reranker"
    judged_static_collection(capsys, tiny_beir, collection)
    train = ["train-reranker", tiny_beir, "--collection", collection, "--out", model]
    small = ["--epochs", "1", "--negatives", "2", "--depth", "4", "--max-length", "64", "--quiet"]
    code, out, err = run_cli(capsys, *train, *small, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["queries"] == 2 and report["rows"] == 2 and report["dev"] is None
    assert json.loads((model / "densekit_training.json").read_text())["split"] == "train"

    pipeline = tmp_path / "rerank.toml"
    pipeline.write_text(
        f'[[candidates]]\nretriever = "bm25"\n[[rerank]]\nmodel = "{model}"\nweight = 0.5\n',
        encoding="utf-8",
    )
    code, out, err = run_cli(capsys, "search", collection, "loyal dogs", "--pipeline", pipeline)
    assert code == 0, err

    code, _, err = run_cli(capsys, *train, *small)
    assert code == 2 and "pass --overwrite" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, *train, "--overwrite", "--split", "dev", "--quiet")
    assert code == 2 and "Traceback" not in err


def test_depth_and_skip_flags_are_the_mining_window(
    capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from densekit.cli import train_reranker_command
    from densekit.train.mining import MiningConfig
    from densekit.train.reranker import RerankerConfig, TrainingReport

    configs: list[RerankerConfig] = []

    def capture(config: RerankerConfig) -> TrainingReport:
        configs.append(config)
        return TrainingReport("o", 0, 0, 0, 0, 0, 0, 0.0, {})

    monkeypatch.setattr(train_reranker_command, "train_reranker", capture)
    train = ["train-reranker", "d", "--collection", "c", "--out", "o", "--quiet"]
    code, _, err = run_cli(capsys, *train, "--depth", "40", "--skip", "4")
    assert code == 0, err
    assert configs[0].settings.mining == MiningConfig(ranks=(5, 40), margin=None)
    code, _, err = run_cli(capsys, *train, "--skip", "30")
    assert code == 2 and "skip < depth" in err and len(configs) == 1


def test_mvp_trained_by_one_command_reranks_the_same_in_the_next(
    capsys, tiny_beir: Path, tmp_path: Path
) -> None:
    collection, model = tmp_path / "c", tmp_path / "mvp"
    judged_static_collection(capsys, tiny_beir, collection)
    train = ["train-reranker", tiny_beir, "--collection", collection, "--out", model]
    small = ["--kind", "mvp", "--views", "2", "--epochs", "1", "--negatives", "2", "--depth",
             "4", "--max-length", "64", "--quiet", "--json"]  # fmt: skip
    code, out, err = run_cli(capsys, *train, *small)
    assert code == 0, err
    assert json.loads(out)["settings"]["views"] == 2
    pipeline = tmp_path / "mvp.toml"
    pipeline.write_text(
        f'[[candidates]]\nretriever = "bm25"\n[[rerank]]\nkind = "mvp"\nmodel = "{model}"\n'
        "top_n = 5\nbatch = 2\n",
        encoding="utf-8",
    )
    search = ["search", collection, "vitamin D and bones", "--pipeline", pipeline, "--json"]
    code, out, err = run_cli(capsys, *search)
    assert code == 0, err
    here = [(hit["id"], hit["score"]) for hit in json.loads(out)["hits"]]
    command = [sys.executable, "-m", "densekit.cli.main", *map(str, search)]
    there = subprocess.run(command, capture_output=True, text=True, check=False)
    assert there.returncode == 0, there.stderr
    # A fresh process reads the same view tokens and decoder: the same ranking and scores.
    assert [(hit["id"], hit["score"]) for hit in json.loads(there.stdout)["hits"]] == here

    (model / "decoder.safetensors").unlink()
    code, _, err = run_cli(capsys, *search)
    assert code == 2 and "without its decoder (decoder.safetensors)" in err
    assert "Traceback" not in err
    code, _, err = run_cli(capsys, *train, "--overwrite", "--views", "2", "--quiet")
    assert code == 2 and "--views applies to --kind mvp only" in err
