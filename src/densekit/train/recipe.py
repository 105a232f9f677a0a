"""Training recipes for bi-encoders: a TOML file (or the same dataclasses) with three tables.

```toml
[data]                 # where the contrast comes from (densekit.train.MiningConfig)
negatives = 3          # mined hard negatives per query (0: in-batch negatives only)
ranks = [30, 100]      # mining window: ranks 30-100 of each retriever (KaLM samples 50-100)
retrievers = ["bm25", "dense"]
margin = 0.95          # drop a negative whose dense score is >= margin x the positive's

[loss]
temperature = 0.05
focal_gamma = 0.0      # > 0: focal InfoNCE (KaLM-Embedding-V2)
cached = false         # GradCache: large batches in little memory (plain InfoNCE only)
mini_batch = 16        # cached: texts per forward pass
[loss.mixing]          # synthetic hard negatives (MoCHi); keys of densekit.train.Mixing
pairs = 8

[train]
epochs = 1
batch = 32
learning_rate = 2e-5
```

Every key is checked; a mistake names its table and key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from densekit.errors import InputError
from densekit.tomlfile import read_toml, refuse_unknown_keys
from densekit.train.checks import positive, whole
from densekit.train.losses.distillation import Distillation
from densekit.train.losses.matryoshka import MatryoshkaRecipe
from densekit.train.losses.mixing import Mixing
from densekit.train.mining import MiningConfig


@dataclass(frozen=True)
class DistillRecipe:
    """Score distillation from a cross-encoder teacher (any CrossEncoder folder or hub name,
    e.g. one from `densekit train-reranker`), added to the contrastive loss with ``weight``."""

    teacher: str = ""
    kind: str = "margin-mse"  # or "kl"
    weight: float = 1.0
    teacher_temperature: float = 1.0
    batch: int = 32  # teacher scoring batch

    def distillation(self) -> Distillation:
        return Distillation(self.kind, self.weight, self.teacher_temperature)


@dataclass(frozen=True)
class LossRecipe:
    temperature: float = 0.05
    focal_gamma: float = 0.0
    cached: bool = False
    mini_batch: int = 16
    mixing: Mixing | None = None
    matryoshka: MatryoshkaRecipe | None = None
    distill: DistillRecipe | None = None


@dataclass(frozen=True)
class TrainRecipe:
    # At most this many epochs: with a dev split, the model kept is the epoch that scored best
    # on it, and training stops once ``early_stopping`` epochs in a row have not beaten it.
    epochs: int = 4
    batch: int = 32
    learning_rate: float = 3e-5
    warmup: float = 0.1
    max_length: int = 256
    seed: int = 0
    dev_share: float = 0.1  # of the judged queries, held out for dev evaluation
    eval_steps: int = 0  # also evaluate every this many steps (0: at each epoch's end only)
    checkpoint_steps: int = 100
    early_stopping: int = 1  # epochs without a better dev score before stopping (0: never)


@dataclass(frozen=True)
class Recipe:
    data: MiningConfig = field(default_factory=MiningConfig)
    loss: LossRecipe = field(default_factory=LossRecipe)
    train: TrainRecipe = field(default_factory=TrainRecipe)

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_toml(cls, path: str | Path) -> Recipe:
        return cls.from_dict(read_toml(Path(path), "recipe"), where=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "recipe") -> Recipe:
        try:
            refuse_unknown_keys(data, {"data", "loss", "train"}, "the recipe")
            loss = dict(settings_table(data, "loss"))
            if "mixing" in loss:
                loss["mixing"] = build_settings(
                    Mixing, settings_table(loss, "mixing"), "[loss.mixing]"
                )
            if "distill" in loss:
                loss["distill"] = build_settings(
                    DistillRecipe, settings_table(loss, "distill"), "[loss.distill]"
                )
            if "matryoshka" in loss:
                loss["matryoshka"] = build_settings(
                    MatryoshkaRecipe, settings_table(loss, "matryoshka"), "[loss.matryoshka]"
                )
            return cls(
                data=build_settings(MiningConfig, settings_table(data, "data"), "[data]"),
                loss=build_settings(LossRecipe, loss, "[loss]"),
                train=build_settings(TrainRecipe, settings_table(data, "train"), "[train]"),
            )
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_train(self, **overrides: Any) -> Recipe:
        """This recipe with ``[train]`` keys replaced (None leaves a key as it is): the command
        line's --epochs, --batch, --lr and --seed."""
        given = {name: value for name, value in overrides.items() if value is not None}
        return replace(self, train=replace(self.train, **given)) if given else self


def _validate(recipe: Recipe) -> None:
    data, loss, train = recipe.data, recipe.loss, recipe.train
    positive(loss.temperature, "loss.temperature")
    if not math.isfinite(loss.focal_gamma) or loss.focal_gamma < 0:
        raise InputError(f"loss.focal_gamma must be 0 or more, got {loss.focal_gamma}")
    whole(loss.mini_batch, "loss.mini_batch", minimum=1)
    if not isinstance(loss.cached, bool):
        raise InputError(f"loss.cached must be true or false, got {loss.cached!r}")
    if loss.cached and loss.matryoshka is not None and loss.matryoshka.layers:
        raise InputError(
            "loss.cached does not combine with 2D Matryoshka (matryoshka.layers): the layer "
            "loss cannot wrap the gradient cache; drop one of them"
        )
    if loss.cached and (loss.focal_gamma or loss.mixing is not None):
        raise InputError(
            "loss.cached works with plain InfoNCE only: focal weighting and mixing need the "
            "whole batch's embeddings at once; drop cached or use a smaller batch"
        )
    if loss.matryoshka is not None:
        _validate_matryoshka(loss.matryoshka)
    if loss.distill is not None:
        _validate_distill(loss.distill, loss, data)
    for name in ("epochs", "batch", "max_length", "checkpoint_steps"):
        whole(getattr(train, name), f"train.{name}", minimum=1)
    whole(train.eval_steps, "train.eval_steps", minimum=0)
    whole(train.early_stopping, "train.early_stopping", minimum=0)
    whole(train.seed, "train.seed", minimum=0)
    positive(train.learning_rate, "train.learning_rate")
    if not 0 <= train.warmup < 1 or not 0 <= train.dev_share < 1:
        raise InputError("train.warmup and train.dev_share must be in [0, 1)")


def _validate_matryoshka(matryoshka: MatryoshkaRecipe) -> None:
    dims = matryoshka.dims
    for dim in dims:
        whole(dim, "loss.matryoshka.dims", minimum=1)
    if not dims or list(dims) != sorted(set(dims), reverse=True):
        raise InputError(
            f"loss.matryoshka.dims must be distinct sizes, largest first, got {list(dims)}"
        )
    whole(matryoshka.layers_per_step, "loss.matryoshka.layers_per_step", minimum=1)
    whole(matryoshka.dims_per_step, "loss.matryoshka.dims_per_step", minimum=1)
    if not isinstance(matryoshka.layers, bool):
        raise InputError(f"loss.matryoshka.layers must be true or false, got {matryoshka.layers!r}")
    if not math.isfinite(matryoshka.kl_weight) or matryoshka.kl_weight < 0:
        raise InputError(f"loss.matryoshka.kl_weight must be 0 or more, got {matryoshka.kl_weight}")


def _validate_distill(distill: DistillRecipe, loss: LossRecipe, data: MiningConfig) -> None:
    if not isinstance(distill.teacher, str) or not distill.teacher:
        raise InputError("loss.distill.teacher must name a cross-encoder (a folder or hub name)")
    whole(distill.batch, "loss.distill.batch", minimum=1)
    distill.distillation()  # checks kind, weight and temperature
    if loss.cached:
        raise InputError("loss.distill does not combine with loss.cached; drop one of them")
    if data.negatives == 0:
        raise InputError(
            "loss.distill compares each positive with its negatives: set data.negatives >= 1"
        )


def settings_table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The table ``[key]`` of a settings file (empty when absent)."""
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise InputError(f"{key} must be a table ([{key}] in TOML)")
    return value


def build_settings(kind: type, values: Mapping[str, Any], where: str) -> Any:
    """The dataclass ``kind`` from a TOML table, every key and number checked."""
    refuse_unknown_keys(values, {f.name for f in fields(kind)}, where)
    converted = dict(values)
    for name in ("ranks", "retrievers", "dims", "targets"):
        if name in converted:
            if not isinstance(converted[name], list | tuple):
                raise InputError(f"{where} {name} must be a list, got {converted[name]!r}")
            converted[name] = tuple(converted[name])
    numbers = ("temperature", "learning_rate", "warmup", "dev_share", "focal_gamma", "margin")
    for name in (*numbers, "kl_weight", "weight", "teacher_temperature"):
        value = converted.get(name)
        if isinstance(value, bool) or (value is not None and not isinstance(value, int | float)):
            raise InputError(f"{where} {name} must be a number, got {value!r}")
    if kind is Mixing:
        for name in ("pairs", "with_query", "hardest"):
            if name in converted:
                whole(converted[name], f"mixing.{name}", minimum=0)
        share = converted.get("max_query_share", 0.5)
        if isinstance(share, bool) or not isinstance(share, int | float):
            raise InputError(f"mixing.max_query_share must be a number, got {share!r}")
    return kind(**converted)
