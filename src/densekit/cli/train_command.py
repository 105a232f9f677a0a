"""`densekit train`: fine-tune a bi-encoder on a dataset's training judgements by a recipe."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from densekit.cli.arguments import positive_int
from densekit.cli.output import print_json, warn

if TYPE_CHECKING:
    from densekit.train.result import TrainResult


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="fine-tune an embedding model on training qrels (recipe in TOML)"
    )
    parser.add_argument(
        "dataset", nargs="?", help="BEIR-layout dataset directory (or give --triplets)"
    )
    parser.add_argument(
        "--triplets", help="train on a pairs/triplets JSONL file (densekit mine-negatives)"
    )
    parser.add_argument("--out", required=True, help="folder for the trained model")
    parser.add_argument("--split", default="train", help="qrels split (default: %(default)s)")
    parser.add_argument("--base", default="minilm", help="starting model (default: minilm)")
    parser.add_argument("--config", help="recipe TOML ([data], [loss], [train]); default recipe")
    parser.add_argument(
        "--loss",
        choices=("contrastive", "colbert"),
        default="contrastive",
        help="contrastive: a single-vector bi-encoder by the recipe (default); colbert: a "
        "late-interaction model (token vectors, MaxSim) for densekit index --multivector",
    )
    parser.add_argument(
        "--collection", help="a collection of the dataset's corpus, to mine hard negatives from"
    )
    parser.add_argument("--epochs", type=positive_int, help="overrides [train] epochs")
    parser.add_argument("--batch", type=positive_int, help="overrides [train] batch")
    parser.add_argument("--lr", type=float, help="overrides [train] learning_rate")
    parser.add_argument("--seed", type=int, help="overrides [train] seed")
    parser.add_argument("--overwrite", action="store_true", help="replace a model at --out")
    parser.add_argument(
        "--restart", action="store_true", help="discard checkpoints of an earlier run"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.loss == "colbert":
        return _train_colbert(args)
    from densekit.train.bi_encoder import TrainConfig, train_model
    from densekit.train.recipe import Recipe

    recipe = Recipe.from_toml(args.config) if args.config else Recipe()
    config = TrainConfig(
        args.dataset,
        args.out,
        base=args.base,
        split=args.split,
        recipe=recipe.with_train(
            epochs=args.epochs, batch=args.batch, learning_rate=args.lr, seed=args.seed
        ),
        collection=args.collection,
        triplets=args.triplets,
        overwrite=args.overwrite,
        restart=args.restart,
        progress=not args.quiet,
    )
    return report_result(train_model(config), as_json=args.json)


def _train_colbert(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from densekit.errors import InputError
    from densekit.train.late_interaction import LateInteractionTraining, train_late_interaction

    for flag, given in (("--config", args.config), ("--triplets", args.triplets)):
        if given:
            raise InputError(f"{flag} sets up contrastive training; drop it with --loss colbert")
    if not args.dataset or not args.collection:
        raise InputError(
            "--loss colbert trains on a dataset's judgements with negatives mined from a "
            "collection of its corpus: give DATASET and --collection DIR"
        )
    settings = LateInteractionTraining(base=args.base)
    given = {
        "epochs": args.epochs,
        "batch": args.batch,
        "learning_rate": args.lr,
        "seed": args.seed,
    }
    settings = replace(settings, **{k: v for k, v in given.items() if v is not None})
    result = train_late_interaction(
        args.dataset,
        args.collection,
        args.out,
        split=args.split,
        settings=settings,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    return report_result(result, as_json=args.json)


def report_result(result: TrainResult, *, as_json: bool) -> int:
    """A training's warnings on stderr, then its report on stdout (JSON or a few lines)."""
    for line in result.warnings():
        warn(line)
    if as_json:
        print_json(result.to_dict())
    else:
        print("\n".join(result.summary()))
    return 0
