"""`densekit adapt`: fit a residual adapter or a lexical bridge to a collection's vectors."""

from __future__ import annotations

import argparse
import dataclasses

from densekit.adapt.binary_codes import BINARY_TRAINING, BinaryCodeSpec
from densekit.adapt.on_collection import KINDS, AdaptOptions, adapt_collection
from densekit.adapt.training import AdapterTraining
from densekit.cli.arguments import positive_int
from densekit.cli.output import print_json
from densekit.encode.adapters.lexsem import LEXICAL_WEIGHTS, LexSemSpec
from densekit.encode.adapters.residual import FORMS, SIDES, AdapterSpec
from densekit.errors import InputError
from densekit.store.adapters import detach_adapter


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "adapt",
        help="train a residual adapter, lexical bridge or binary codes on a collection's "
        "frozen vectors",
        description="Train a small map on a BEIR dataset's judged (query, positive) pairs, with "
        "the collection's document vectors frozen, and store it in the collection: its "
        "searches then apply it. Works for any encoder, including ones you cannot fine-tune.",
    )
    parser.add_argument("dataset", nargs="?", help="BEIR dataset folder with the training split")
    parser.add_argument("--collection", required=True, help="the collection to adapt")
    parser.add_argument("--kind", choices=KINDS, default="residual")
    parser.add_argument("--split", default="train", help="qrels split to train on (train)")
    parser.add_argument(
        "--query-vectors",
        metavar="FILE",
        help="the training queries' vectors (.parquet with id and vector columns), for "
        "collections built from vectors made elsewhere",
    )
    residual = parser.add_argument_group("residual adapter")
    residual.add_argument("--form", choices=FORMS, default="low-rank")
    residual.add_argument("--rank", type=positive_int, default=64, help="rank or slots (64)")
    residual.add_argument(
        "--sides", choices=SIDES, default="query", help="which vectors it maps (query)"
    )
    lexical = parser.add_argument_group("lexical bridge")
    lexical.add_argument(
        "--weights", choices=LEXICAL_WEIGHTS, default="slr", help="slr: IDF; llr: learned (slr)"
    )
    binary = parser.add_argument_group("binary codes (--kind binary)")
    binary.add_argument(
        "--bits", type=positive_int, help="bits per code, a multiple of 8 (default: the index's)"
    )
    binary.add_argument(
        "--contrastive",
        type=float,
        default=1.0,
        help="weight of the judged positives' loss beside similarity preservation (1.0; 0: "
        "judgements unused)",
    )
    binary.add_argument(
        "--rescore",
        type=int,
        default=2,
        metavar="M",
        help="a new learned index rescores k x M candidates with the float vectors (2; 0: none)",
    )
    training = parser.add_argument_group("training")
    # Defaults by kind (adapters: 20, 64, 1e-3, 0.05; binary codes: BINARY_TRAINING's).
    training.add_argument("--epochs", type=positive_int)
    training.add_argument("--batch", type=positive_int)
    training.add_argument("--lr", type=float)
    training.add_argument("--temperature", type=float)
    training.add_argument(
        "--negatives", type=positive_int, help="sampled negatives per step (default: all)"
    )
    training.add_argument("--seed", type=int)
    parser.add_argument("--out", help="also save the adapter to this folder")
    parser.add_argument(
        "--no-store", action="store_true", help="do not store it in the collection (needs --out)"
    )
    parser.add_argument(
        "--remove", action="store_true", help="remove the collection's adapter and stop"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.remove:
        removed = detach_adapter(args.collection)
        print(f"{args.collection}: {'adapter removed' if removed else 'no adapter to remove'}")
        return 0
    if args.dataset is None and args.kind != "binary":
        raise InputError("give the DATASET folder to train on (or --remove)")
    if args.no_store and not args.out:
        raise InputError("--no-store keeps nothing without --out FOLDER")
    options = AdaptOptions(
        kind=args.kind,
        residual=AdapterSpec(form=args.form, rank=args.rank, sides=args.sides),
        lexsem=LexSemSpec(weights=args.weights),
        binary=BinaryCodeSpec(bits=args.bits, contrastive=args.contrastive, rescore=args.rescore),
        training=_training(args),
        split=args.split,
    )
    report = adapt_collection(
        args.dataset,
        args.collection,
        options,
        attach=not args.no_store,
        out=args.out,
        query_vectors=args.query_vectors,
    )
    if args.json:
        print_json(report)
    elif args.kind == "binary":
        print(_binary_summary(report))
    else:
        where = report.get("stored_in") or report.get("saved_to")
        print(
            f"{args.kind} trained on {report['pairs']} pairs of {report['queries']} queries in "
            f"{report['seconds']:.1f} s (loss {report['loss_first_epoch']:.3f} → "
            f"{report['loss_last_epoch']:.3f}); stored in {where}"
        )
    return 0


def _training(args: argparse.Namespace) -> AdapterTraining:
    defaults = BINARY_TRAINING if args.kind == "binary" else AdapterTraining()
    given = {
        "epochs": args.epochs,
        "batch": args.batch,
        "learning_rate": args.lr,
        "temperature": args.temperature,
        "negatives": args.negatives,
        "seed": args.seed,
    }
    return dataclasses.replace(defaults, **{k: v for k, v in given.items() if v is not None})


def _binary_summary(report: dict) -> str:
    where = f"{report['stored_in']} now searches {report['index']}"
    if "steps" not in report:
        return f"learned {report['bits']}-bit codes from the collection's vectors (ITQ); {where}"
    return (
        f"binary head ({report['bits']} bits) trained on {report['queries']} queries, "
        f"{report['pairs']} judged pairs in {report['seconds']:.1f} s (loss "
        f"{report['loss_first_epoch']:.3f} → {report['loss_last_epoch']:.3f}); {where}"
    )
