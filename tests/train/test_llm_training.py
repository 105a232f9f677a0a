"""LoRA training of decoder LLM encoders, the GRL loss, saving and loading the result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from required import require

from densekit.cli.main import main
from densekit.encode import load_encoder
from densekit.errors import InputError
from densekit.train.llm_trainer import LlmEncoderTrainer, LlmTraining, LoraSettings
from densekit.train.losses.dpo import dpo_loss
from densekit.train.losses.grl import grl_loss
from densekit.train.pairs import Example

require("peft")

ROWS = [
    Example("cat mat", "the cat sat on the mat", ("fish swim rivers",)),
    Example("dog ran", "the dog ran", ("vitamin bones strong",)),
    Example("fish rivers", "fish swim rivers", ("the cat sat on the mat",)),
    Example("vitamin bones", "vitamin bones strong", ("the dog ran",)),
]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_llms import tiny_model

    return tiny_model(tmp_path_factory.mktemp("llm") / "llama", "llama")


def test_grl_is_the_kl_from_generation_to_representation_and_moves_only_representation():
    representation = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]], requires_grad=True)
    generation = torch.tensor([[-0.5, -2.0, -3.0], [-1.0, -1.0, -1.0]], requires_grad=True)
    loss = grl_loss(representation, generation)
    p = torch.softmax(generation.detach(), dim=-1)
    q = torch.softmax(representation.detach(), dim=-1)
    expected = (p * (p.log() - q.log())).sum(dim=-1).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert representation.grad is not None and generation.grad is None
    same = grl_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 2.0]]) + 5.0)
    assert float(same) == pytest.approx(0.0, abs=1e-7)  # shifts do not change a softmax
    sharper = grl_loss(representation.detach(), generation.detach(), temperature=0.25)
    torch.testing.assert_close(sharper, grl_loss(representation.detach(), 4 * generation.detach()))


def test_dpo_prefers_each_positive_to_each_negative_relative_to_the_reference():
    policy = torch.tensor([[-3.0, -5.0, -4.0], [-2.0, -1.0, -2.5]], requires_grad=True)
    reference = torch.tensor([[-4.0, -4.0, -4.0], [-2.0, -2.0, -2.0]], requires_grad=True)
    loss = dpo_loss(policy, reference, beta=0.5)
    gain = policy.detach() - reference.detach()
    margins = torch.cat([gain[:, :1] - gain[:, 1:2], gain[:, :1] - gain[:, 2:3]], dim=1)
    torch.testing.assert_close(loss, -torch.nn.functional.logsigmoid(0.5 * margins).mean())
    loss.backward()
    assert reference.grad is None
    assert policy.grad[:, 0].lt(0).all() and policy.grad[:, 1:].gt(0).all()  # raise p+, lower p-
    unchanged = dpo_loss(reference.detach(), reference.detach(), beta=0.5)
    assert float(unchanged) == pytest.approx(float(np.log(2.0)))


def test_the_dpo_term_makes_queries_likelier_after_their_positives(llama):
    training = LlmTraining(dpo_weight=2.0, dpo_beta=0.5, lora=LoraSettings(rank=4))
    trainer = LlmEncoderTrainer(f"llm:{llama}#max_tokens=64", training)
    total, parts = trainer.loss(ROWS)
    assert "grl" not in parts
    assert float(total) == pytest.approx(parts["contrastive"] + 2.0 * parts["dpo"], rel=1e-5)
    assert parts["dpo"] == pytest.approx(np.log(2.0), abs=1e-5)  # LoRA starts as the base

    queries = [row.query for row in ROWS]
    candidates = [[row.positive, *row.negatives] for row in ROWS]

    def generation_margin() -> float:
        trainer.model.eval()  # no LoRA dropout while scoring
        pairs = [(q, text) for q, row in zip(queries, candidates, strict=True) for text in row]
        scores = trainer.scorer.query_log_likelihood(pairs).reshape(len(ROWS), -1)
        return float((scores[:, 0] - scores[:, 1]).mean())

    before = generation_margin()
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=5e-3)
    for _ in range(15):  # the generative term alone: its gradient reaches the LoRA weights
        preference = trainer.generation_preference(queries, candidates)
        optimizer.zero_grad()
        preference.backward()
        optimizer.step()
    assert float(preference) < 0.67
    assert generation_margin() > before
    with trainer.model.disable_adapter():  # the reference: the base model, untouched
        assert generation_margin() == pytest.approx(before, abs=1e-5)


@pytest.mark.parametrize(("grl_weight", "dpo_weight"), [(0.0, 0.0), (1.0, 0.0), (1.0, 0.5)])
def test_lora_training_lowers_the_loss_and_saves_a_model_llm_loads(
    llama, tmp_path, grl_weight, dpo_weight
):
    training = LlmTraining(
        epochs=15,
        batch=4,
        learning_rate=5e-3,
        grl_weight=grl_weight,
        dpo_weight=dpo_weight,
        lora=LoraSettings(rank=4),
    )
    trainer = LlmEncoderTrainer(f"llm:{llama}#max_tokens=64", training)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in trainer.model.parameters()) / 2
    _, parts = trainer.loss(ROWS)
    assert ("grl" in parts) == bool(grl_weight) and ("dpo" in parts) == bool(dpo_weight)
    report = trainer.train(ROWS)
    assert report["steps"] == 15 and report["loss_last"] < report["loss_first"]
    model = trainer.save(tmp_path / "merged")
    assert model.startswith(f"llm:{tmp_path / 'merged'}#attention=bidirectional")
    tuned, base = load_encoder(model), load_encoder(f"llm:{llama}#max_tokens=64")
    texts = [row.positive for row in ROWS]
    assert not np.allclose(tuned.encode_documents(texts), base.encode_documents(texts), atol=1e-4)
    if not grl_weight:  # (GRL also pulls towards the random tiny model's own judgements)
        # Each query moved towards its positive and away from its negative.
        assert margin(tuned) > margin(base)


def margin(encoder) -> float:
    queries = encoder.encode_queries([row.query for row in ROWS])
    positives = encoder.encode_documents([row.positive for row in ROWS])
    negatives = encoder.encode_documents([row.negatives[0] for row in ROWS])
    return float(((queries * positives).sum(1) - (queries * negatives).sum(1)).mean())


def test_adapter_only_folders_load_like_the_merged_model(llama, tmp_path):
    training = LlmTraining(epochs=3, learning_rate=5e-3, lora=LoraSettings(rank=2))
    trainer = LlmEncoderTrainer(f"llm:{llama}#max_tokens=64", training)
    trainer.train(ROWS)
    adapter = load_encoder(trainer.save(tmp_path / "adapter", merged=False))
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    merged = load_encoder(trainer.save(tmp_path / "merged"))
    texts = [row.positive for row in ROWS]
    np.testing.assert_allclose(
        adapter.encode_documents(texts), merged.encode_documents(texts), atol=1e-5
    )


def test_a_trained_projection_head_travels_with_the_model(llama, tmp_path):
    training = LlmTraining(epochs=3, learning_rate=5e-3, projection=16, lora=LoraSettings(rank=2))
    trainer = LlmEncoderTrainer(f"llm:{llama}#max_tokens=64", training)
    trainer.train(ROWS)
    expected = trainer.embed([row.positive for row in ROWS]).detach().numpy()
    for merged in (True, False):
        model = load_encoder(trainer.save(tmp_path / f"out-{merged}", merged=merged))
        assert model.dimension == 16
        np.testing.assert_allclose(
            model.encode_documents([row.positive for row in ROWS]), expected, atol=1e-5
        )


def test_generation_scores_are_the_rerankers_log_likelihoods(llama):
    trainer = LlmEncoderTrainer(f"llm:{llama}", LlmTraining())
    scores = trainer.generation_scores(["cat mat"], [["the cat sat on the mat", "fish swim"]])
    expected = trainer.scorer.query_log_likelihood(
        [("cat mat", "the cat sat on the mat"), ("cat mat", "fish swim")], passage_tokens=128
    )
    np.testing.assert_allclose(scores.numpy()[0], expected, atol=1e-6)
    assert trainer.model.training  # scoring puts the model back in training mode


def test_lora_targets_that_match_nothing_are_refused_with_the_names_there_are(llama):
    with pytest.raises(InputError, match=r"LoRA targets qkv match no module .*q_proj"):
        LlmEncoderTrainer(f"llm:{llama}", LlmTraining(lora=LoraSettings(targets=("qkv",))))
    with pytest.raises(InputError, match="learning rate"):
        LlmTraining(learning_rate=0)
    with pytest.raises(InputError, match="dpo_beta"):
        LlmTraining(dpo_beta=0)
    with pytest.raises(InputError, match="grl_temperature"):
        LlmTraining(grl_temperature=0)
    with pytest.raises(InputError, match="dpo_weight"):
        LlmTraining(dpo_weight=-1)
    unmined = [Example(row.query, row.positive) for row in ROWS]
    grl = LlmEncoderTrainer(f"llm:{llama}", LlmTraining(grl_weight=1.0))
    with pytest.raises(InputError, match="have none"):
        grl.loss(unmined)


def test_cli_train_llm(capsys, llama, tiny_beir, tmp_path):
    judged = "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\n"
    (tiny_beir / "qrels" / "train.tsv").write_text(judged)
    out = tmp_path / "tuned"
    command = ["train-llm", str(tiny_beir), "--base", f"llm:{llama}#max_tokens=64"]
    assert main([*command, "--out", str(out), "--epochs", "5", "--max-steps", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 2 and report["model"].startswith(f"llm:{out}#")
    for term in ("--grl-weight", "--dpo-weight"):
        assert main([*command, "--out", str(tmp_path / "g"), term, "1"]) == 2
        assert "--collection" in capsys.readouterr().err


@pytest.mark.usefixtures("bundled_smollm2")
@pytest.mark.slow
def test_cli_train_llm_on_the_bundled_smollm2_with_grl_and_dpo(capsys, tiny_beir, tmp_path):

    judged = "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\n"
    (tiny_beir / "qrels" / "train.tsv").write_text(judged)
    collection = tmp_path / "c"
    corpus = str(tiny_beir / "corpus.jsonl")
    flags = ["--model", "static", "--quiet", "--no-cache"]
    assert main(["index", corpus, "--out", str(collection), *flags]) == 0
    capsys.readouterr()
    out = tmp_path / "tuned"
    command = ["train-llm", str(tiny_beir), "--out", str(out), "--collection", str(collection)]
    options = ["--negatives", "1", "--ranks", "1:4", "--batch", "2", "--epochs", "2"]
    options += ["--grl-weight", "1", "--grl-temperature", "0.25", "--dpo-weight", "1"]
    options += ["--adapter-only"]
    base = "llm:smollm2#max_tokens=64"
    assert main([*command, "--base", base, *options, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 2 and (out / "adapter_config.json").is_file()
    assert report["training"]["grl_temperature"] == 0.25
    texts = ["Vitamin D deficiency raises the risk of bone fractures."]
    tuned = load_encoder(report["model"]).encode_documents(texts)
    assert tuned.shape == (1, 576)
    assert not np.allclose(tuned, load_encoder(base).encode_documents(texts), atol=1e-5)


def test_grl_and_dpo_take_rows_with_fewer_mined_negatives(llama):
    training = LlmTraining(grl_weight=1.0, dpo_weight=1.0, lora=LoraSettings(rank=2))
    trainer = LlmEncoderTrainer(f"llm:{llama}#max_tokens=64", training)
    ragged = [
        Example("cat mat", "the cat sat on the mat", ("fish swim rivers", "the dog ran")),
        Example("dog ran", "the dog ran", ("vitamin bones strong",)),
    ]
    generation = trainer.generation_scores(
        [row.query for row in ragged], [[row.positive, *row.negatives] for row in ragged]
    )
    assert generation.shape == (2, 3) and generation[1, 2] < -1e3  # the lacking place masked
    loss, parts = trainer.loss(ragged)
    assert np.isfinite(parts["grl"]) and np.isfinite(parts["dpo"])
    assert parts["dpo"] == pytest.approx(np.log(2.0), abs=1e-5)  # three real pairs, none padded
    loss.backward()
    grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_train_llm_runs_from_python_without_the_command_line(llama, tiny_beir, tmp_path):
    from densekit.train import LlmConfig, train_llm

    judged = "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\n"
    (tiny_beir / "qrels" / "train.tsv").write_text(judged)
    training = LlmTraining(epochs=5, max_steps=2, lora=LoraSettings(rank=2))
    config = LlmConfig(
        tiny_beir, tmp_path / "tuned", base=f"llm:{llama}#max_tokens=64", training=training
    )
    result = train_llm(config)
    assert (result.steps, result.rows, result.queries) == (2, 2, 2)
    assert result.out == str(tmp_path / "tuned") and result.model.startswith(f"llm:{result.out}#")
    assert result.to_dict()["training"]["lora"]["rank"] == 2
    assert load_encoder(result.model).encode_documents(["the dog ran"]).shape[0] == 1
    with pytest.raises(InputError, match="pass --overwrite"):
        train_llm(config)
    grl = LlmConfig(tiny_beir, tmp_path / "g", training=LlmTraining(grl_weight=1.0))
    with pytest.raises(InputError, match="--collection DIR --negatives N"):
        train_llm(grl)  # no collection: nothing to rank the positive among
