"""`densekit train-defsent`: sentence embeddings trained on dictionary definitions (DefSent+)."""

from __future__ import annotations

import argparse

from densekit.cli.arguments import positive_int
from densekit.cli.train_command import report_result
from densekit.corpus.dictionary import WORDNET_FOLDER
from densekit.train.defsent import ISOTROPY, DefSentConfig, DefSentTraining, train_defsent


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-defsent",
        help="train sentence embeddings on dictionary definitions (DefSent+), no labelled pairs",
        description="Train a sentence-transformers model so that each definition's embedding "
        "picks out its entry, embedded by the base model as a phrase and projected into a "
        "(quasi-)isotropic space. The dictionary is WordNet 3.0 (Debian's wordnet-base) unless "
        "--dictionary gives your own.",
    )
    defaults = DefSentTraining()
    parser.add_argument("--out", required=True, help="folder for the trained model")
    parser.add_argument(
        "--base", default=defaults.base, help="starting model (default: %(default)s)"
    )
    parser.add_argument(
        "--dictionary", help="a TSV of entry<TAB>definition lines, instead of WordNet"
    )
    parser.add_argument(
        "--wordnet",
        default=str(WORDNET_FOLDER),
        help="folder of WordNet's data files (default: %(default)s)",
    )
    parser.add_argument(
        "--isotropy",
        choices=ISOTROPY,
        default=defaults.isotropy,
        help="how the entries' vectors are projected: quasi (each dimension standardised), "
        "full (whitened) or off (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    parser.add_argument("--batch", type=positive_int, default=defaults.batch)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--temperature", type=float, default=defaults.temperature)
    parser.add_argument("--max-length", type=positive_int, default=defaults.max_length)
    parser.add_argument(
        "--max-pairs", type=positive_int, help="train on a seeded sample of this many pairs"
    )
    parser.add_argument("--checkpoint-steps", type=positive_int, default=defaults.checkpoint_steps)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--restart", action="store_true", help="discard checkpoints of an interrupted run"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a model at --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = DefSentTraining(
        base=args.base,
        isotropy=args.isotropy,
        epochs=args.epochs,
        batch=args.batch,
        learning_rate=args.lr,
        temperature=args.temperature,
        max_length=args.max_length,
        max_pairs=args.max_pairs,
        checkpoint_steps=args.checkpoint_steps,
        seed=args.seed,
    )
    config = DefSentConfig(
        args.out,
        dictionary=args.dictionary,
        wordnet=args.wordnet,
        settings=settings,
        overwrite=args.overwrite,
        restart=args.restart,
        progress=not args.quiet,
    )
    return report_result(train_defsent(config), as_json=args.json)
