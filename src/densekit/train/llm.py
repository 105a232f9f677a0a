"""Train a decoder LLM as an `llm:` encoder (LoRA; contrastive, plus GRL and DPO by weight) on
a dataset's judgements, negatives mined from a collection, and save it (`densekit train-llm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from densekit.errors import InputError
from densekit.evaluate.beir import BeirDataset, load_beir
from densekit.files.durability import refuse_to_replace
from densekit.retrieve.collection import Collection
from densekit.tomlfile import read_toml, refuse_unknown_keys
from densekit.train.llm_trainer import LlmEncoderTrainer, LlmTraining, LoraSettings
from densekit.train.mining import MiningConfig
from densekit.train.pairs import training_examples
from densekit.train.recipe import build_settings, settings_table
from densekit.train.result import TrainResult


@dataclass(frozen=True)
class LlmConfig:
    """One LLM encoder training: ``split`` of ``dataset``, ``mining`` from ``collection`` (no
    collection: in-batch negatives only), the ``base`` LLM, ``training`` settings, and the
    folder ``out`` (a merged model, or with ``merged`` False the LoRA weights alone)."""

    dataset: str | Path | BeirDataset
    out: str | Path
    base: str = "llm:smollm2"
    split: str = "train"
    collection: str | Path | Collection | None = None
    mining: MiningConfig = field(default_factory=MiningConfig)
    training: LlmTraining = field(default_factory=LlmTraining)
    merged: bool = True
    overwrite: bool = False

    @classmethod
    def from_toml(
        cls, path: str | Path, dataset: str | Path | BeirDataset, out: str | Path, **options: Any
    ) -> LlmConfig:
        """Settings from a TOML file: ``[training]`` (the fields of :class:`LlmTraining`),
        ``[lora]`` (of :class:`LoraSettings`) and ``[mining]`` (of :class:`MiningConfig`); what a
        table leaves out keeps its default."""
        data = read_toml(Path(path), "LLM training settings")
        try:
            refuse_unknown_keys(data, {"training", "lora", "mining"}, "the settings")
            training = dict(settings_table(data, "training"))
            if "lora" in data:
                training["lora"] = build_settings(
                    LoraSettings, settings_table(data, "lora"), "[lora]"
                )
            settings = build_settings(LlmTraining, training, "[training]")
            mining = build_settings(MiningConfig, settings_table(data, "mining"), "[mining]")
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        return cls(dataset, out, mining=mining, training=settings, **options)


@dataclass(frozen=True)
class LlmTrainingReport(TrainResult):
    steps: int
    rows: int
    seconds: float
    loss_first: float
    loss_last: float
    training: dict[str, Any]
    model: str  # the model string that encodes with it: llm:OUT#options
    queries: int
    dropped_negatives: int

    def summary(self) -> list[str]:
        return [
            f"trained {self.steps} steps on {self.rows} rows in {self.seconds} s "
            f"(loss {self.loss_first} → {self.loss_last}); index with --model '{self.model}'"
        ]


def train_llm(config: LlmConfig) -> LlmTrainingReport:
    """LoRA-train ``config.base`` as an encoder and save it to ``config.out``."""
    settings = config.training
    mining = config.mining if config.collection is not None else replace(config.mining, negatives=0)
    if (settings.grl_weight or settings.dpo_weight) and mining.negatives < 1:
        raise InputError(
            "GRL and DPO rank each query's positive among its hard negatives: give "
            "--collection DIR --negatives N (N >= 1) to mine them, or --grl-weight 0 "
            "--dpo-weight 0"
        )
    out = Path(config.out)
    refuse_to_replace(out, config.overwrite)
    trainer = LlmEncoderTrainer(config.base, settings)
    dataset = config.dataset
    data = dataset if isinstance(dataset, BeirDataset) else load_beir(dataset, config.split)
    collection = config.collection
    opened = (
        collection
        if collection is None or isinstance(collection, Collection)
        else Collection(collection)
    )
    try:
        examples = training_examples(data, mining, collection=opened, seed=settings.seed)
    finally:
        if opened is not None and opened is not collection:
            opened.close()
    if not examples.rows:
        where = data.root if isinstance(dataset, BeirDataset) else dataset
        first, last = mining.ranks
        raise InputError(
            f"{where}: no training rows: no judged query got {mining.negatives} mined "
            f"negatives between ranks {first} and {last}; widen --ranks or lower --negatives"
        )
    trained = trainer.train(examples.rows)
    model = trainer.save(out, merged=config.merged, overwrite=config.overwrite)
    return LlmTrainingReport(
        out=str(out),
        **trained,
        model=model,
        queries=examples.queries,
        dropped_negatives=examples.dropped_negatives,
    )
