"""`densekit train-bpv`: a Binary Paragraph Vector model from a raw corpus alone."""

from __future__ import annotations

import argparse

from densekit.cli.arguments import positive_int
from densekit.cli.corpus_arguments import add_corpus_arguments
from densekit.cli.output import warn
from densekit.cli.train_command import report_result
from densekit.corpus import CorpusReader, FieldNames
from densekit.train.binary_pv import BinaryPVTraining, train_binary_pv


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-bpv",
        help="learn binary codes of a corpus's documents from their text alone (Binary PV)",
        description="Train a Binary Paragraph Vector model: each document's code, a layer of "
        "bits, is trained to predict the document's words (PV-DBOW), with no judgements and no "
        "pretrained model. Use it as an encoder with --model bpv:DIR (codes of new texts are "
        "inferred), e.g. with --index binary for a Hamming index.",
    )
    add_corpus_arguments(parser)
    parser.add_argument("--out", required=True, help="folder for the trained model")
    defaults = BinaryPVTraining()
    parser.add_argument(
        "--bits", type=positive_int, default=defaults.bits, help="code bits, a multiple of 8"
    )
    parser.add_argument(
        "--real-dim",
        type=int,
        default=defaults.real_dim,
        help="train the real-valued + binary variant with real vectors of this size (the codes "
        "are their projection; bpv:DIR#output=real encodes with them); 0: codes only",
    )
    parser.add_argument(
        "--ngrams",
        type=int,
        choices=(1, 2),
        default=defaults.ngrams,
        help="2: codes predict adjacent word pairs too (default: %(default)s)",
    )
    parser.add_argument(
        "--min-count",
        type=positive_int,
        default=defaults.min_count,
        help="terms rarer than this are left out of the vocabulary (default: %(default)s)",
    )
    parser.add_argument("--max-vocabulary", type=positive_int, default=defaults.max_vocabulary)
    parser.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    parser.add_argument("--batch", type=positive_int, default=defaults.batch)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument(
        "--noise",
        type=float,
        default=defaults.noise,
        help="std of the noise added to the code layer in training (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--overwrite", action="store_true", help="replace a model at --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = BinaryPVTraining(
        bits=args.bits,
        real_dim=args.real_dim,
        ngrams=args.ngrams,
        min_count=args.min_count,
        max_vocabulary=args.max_vocabulary,
        epochs=args.epochs,
        batch=args.batch,
        learning_rate=args.lr,
        noise=args.noise,
        seed=args.seed,
    )
    reader = CorpusReader(
        args.corpus,
        format=args.format,
        fields=FieldNames(args.id_field, args.text_field, args.title_field),
        on_empty=args.empty,
    )
    result = train_binary_pv(
        reader, args.out, settings, overwrite=args.overwrite, progress=not args.quiet
    )
    if reader.stats.skipped_empty:
        warn(f"skipped {reader.stats.skipped_empty} empty documents")
    return report_result(result, as_json=args.json)
