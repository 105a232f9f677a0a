"""Training a bi-encoder end to end on a tiny dataset with the real MiniLM: the model indexes,
the card records the run, and checkpoints of another recipe are refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import judged_hashing_collection
from required import require

from densekit.encode import load_encoder
from densekit.errors import InputError
from densekit.retrieve import build_collection
from densekit.store import BuildOptions
from densekit.train.bi_encoder import train_model
from densekit.train.checkpoints import RUN_FILE
from densekit.train.mining import MiningConfig
from densekit.train.recipe import (
    DistillRecipe,
    LossRecipe,
    MatryoshkaRecipe,
    Recipe,
    TrainRecipe,
)
from densekit.train.result import CARD_FILE

require("datasets")

SMALL = Recipe(
    MiningConfig(negatives=1, ranks=(1, 4), margin=None),
    train=TrainRecipe(epochs=2, batch=2, max_length=64, dev_share=0.0, checkpoint_steps=1),
)


def test_a_trained_model_indexes_and_carries_its_card(tiny_beir: Path, tmp_path: Path) -> None:
    collection = judged_hashing_collection(tiny_beir, tmp_path / "c")
    (tiny_beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\nq2\td5\t0\n", encoding="utf-8"
    )
    out = tmp_path / "model"
    report = train_model(tiny_beir, out, recipe=SMALL, collection=collection, progress=False)
    assert (report.queries, report.rows, report.resumed_from) == (2, 2, None)
    card = json.loads((out / CARD_FILE).read_text())
    assert card["recipe"]["data"]["negatives"] == 1 and card["data"].endswith("(train)")
    assert not out.with_name(".model.checkpoints").exists()
    built = build_collection(
        tiny_beir / "corpus.jsonl",
        tmp_path / "trained",
        BuildOptions(model=str(out), retriever="dense", progress=False, cache_dir=None),
    )
    assert built.search("loyal dogs", 1)[0].id == "d2"


def test_bad_training_input_is_refused(tiny_beir: Path, tmp_path: Path) -> None:
    collection = judged_hashing_collection(tiny_beir, tmp_path / "c")  # names a missing doc
    with pytest.raises(InputError, match="judged documents are not in"):
        train_model(tiny_beir, tmp_path / "m", recipe=SMALL, collection=collection)
    (tiny_beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td3\t1\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match="pass --collection"):
        train_model(tiny_beir, tmp_path / "m", recipe=SMALL)
    stale = tmp_path / ".m.checkpoints"
    (stale / "checkpoint-3").mkdir(parents=True)
    for name, content in (("trainer_state.json", "{}"), ("model.safetensors", "x")):
        (stale / "checkpoint-3" / name).write_text(content)
    (stale / "checkpoint-3" / "optimizer.pt").write_text("x")
    (stale / RUN_FILE).write_text(json.dumps({"recipe": "another"}))
    with pytest.raises(InputError, match="pass --restart"):
        train_model(tiny_beir, tmp_path / "m", recipe=SMALL, collection=collection)
    assert not (tmp_path / "m").exists()


def test_two_d_matryoshka_trains_a_model_that_encodes_cut(tiny_beir: Path, tmp_path: Path) -> None:
    collection = judged_hashing_collection(tiny_beir, tmp_path / "c")
    (tiny_beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\n", encoding="utf-8"
    )
    matryoshka = MatryoshkaRecipe(dims=(384, 128, 32), layers=True)
    recipe = replace(SMALL, loss=LossRecipe(matryoshka=matryoshka))
    out = tmp_path / "m2d"
    train_model(tiny_beir, out, recipe=recipe, collection=collection, progress=False)
    encoder = load_encoder(str(out), layers=3, dim=128)
    assert encoder.encode_queries(["loyal dogs"]).shape == (1, 128)
    too_wide = replace(SMALL, loss=LossRecipe(matryoshka=MatryoshkaRecipe(dims=(512, 64))))
    with pytest.raises(InputError, match="more than the model's 384 dimensions"):
        train_model(tiny_beir, tmp_path / "wide", recipe=too_wide, collection=collection)


def test_distillation_from_a_cross_encoder_teacher(tiny_beir: Path, tmp_path: Path) -> None:
    from densekit.encode import resolve_model
    from densekit.train.reranker import mean_pooled_cross_encoder

    collection = judged_hashing_collection(tiny_beir, tmp_path / "c")
    (tiny_beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\n", encoding="utf-8"
    )
    teacher = tmp_path / "teacher"
    mean_pooled_cross_encoder(resolve_model("minilm").location, 64).save_pretrained(str(teacher))
    distill = DistillRecipe(teacher=str(teacher), kind="kl")
    recipe = replace(SMALL, loss=LossRecipe(distill=distill))
    report = train_model(tiny_beir, tmp_path / "s", recipe=recipe, collection=collection)
    assert report.recipe["loss"]["distill"]["kind"] == "kl"
    missing = replace(SMALL, loss=LossRecipe(distill=DistillRecipe(teacher=str(tmp_path / "no"))))
    with pytest.raises(InputError, match=r"loss\.distill\.teacher: could not load"):
        train_model(tiny_beir, tmp_path / "t", recipe=missing, collection=collection)


def test_only_whole_checkpoints_are_resumed(tmp_path: Path) -> None:
    from densekit.train.checkpoints import complete_checkpoint as _complete

    whole, cut, torn = tmp_path / "checkpoint-2", tmp_path / "checkpoint-3", tmp_path / "c-4"
    for folder in (whole, cut, torn):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x")
        (folder / "optimizer.pt").write_bytes(b"x")
    (whole / "trainer_state.json").write_text('{"global_step": 2}')
    (torn / "trainer_state.json").write_text('{"global_st')  # killed while writing it
    assert _complete(whole) and not _complete(cut) and not _complete(torn)


def test_the_epoch_kept_is_the_best_on_dev(tmp_path: Path) -> None:
    from conftest import BUNDLED_SCIFACT, write_scifact_subset
    from helpers import HashingEncoder

    from densekit.evaluate import load_beir

    queries = sorted(load_beir(BUNDLED_SCIFACT, "test").qrels)[:12]
    root = write_scifact_subset(tmp_path / "data", {"train": queries}, distractors=30)
    options = BuildOptions(progress=False, cache_dir=None)
    collection = build_collection(
        root / "corpus.jsonl", tmp_path / "c", options, encoder=HashingEncoder()
    ).with_encoder(HashingEncoder())
    recipe = Recipe(
        MiningConfig(negatives=1, ranks=(1, 10), margin=None),
        train=TrainRecipe(epochs=3, batch=4, max_length=64, dev_share=0.34, checkpoint_steps=50),
    )
    report = train_model(root, tmp_path / "m", recipe=recipe, collection=collection, progress=False)
    assert report.dev_queries == 4 and report.dev_by_epoch is not None
    assert 1 <= len(report.dev_by_epoch) <= 3 and report.best_epoch is not None
    assert report.dev_after == max(report.dev_by_epoch)
    assert report.dev_by_epoch.index(report.dev_after) + 1 == report.best_epoch
    if len(report.dev_by_epoch) < 3:  # stopped early: the last epoch did not beat the best
        assert report.dev_by_epoch[-1] <= report.dev_after
    card = json.loads((tmp_path / "m" / CARD_FILE).read_text())
    assert card["dev_by_epoch"] == report.dev_by_epoch and card["best_epoch"] == report.best_epoch
    assert not (tmp_path / ".m.checkpoints").exists()
