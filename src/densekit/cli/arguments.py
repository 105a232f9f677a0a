"""Argument types and groups shared by several commands."""

from __future__ import annotations

import argparse

from densekit.errors import InputError
from densekit.retrieve import DEFAULT_FUSION, NORMALIZATIONS, FusionConfig
from densekit.retrieve.fusion import CONVEX_ALPHA, FUSION_METHODS
from densekit.retrieve.pipeline import Pipeline


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def utf8_argument(value: str, what: str) -> str:
    """``value`` as given on the command line, refused when it is not UTF-8 text: Python hands
    such bytes over as lone surrogates, which no file, model or store can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        start = len(_bytes_of(value[: exc.start]))
        raw = _bytes_of(value)
        raise InputError(
            f"{what} {raw!r} is not valid UTF-8 (byte {start}: {raw[start : start + 1]!r}); "
            "pass it as UTF-8 (check the terminal's or the script's encoding)"
        ) from None
    return value


def _bytes_of(value: str) -> bytes:
    """The bytes a command-line argument was made of."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no byte decodes to: given from Python, not argv
        return value.encode("utf-8", "backslashreplace")


def rank_window(text: str) -> tuple[int, int]:
    """A FIRST:LAST rank window of mined negatives."""
    first, _, last = text.partition(":")
    try:
        window = (int(first), int(last))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected FIRST:LAST ranks, e.g. 30:100, got {text!r}"
        ) from None
    return window


def add_fusion_arguments(parser: argparse.ArgumentParser, default_help: str) -> None:
    parser.add_argument(
        "--fusion",
        choices=FUSION_METHODS,
        help="hybrid fusion: calibrated (weighs each query's lists on their own scales), convex "
        f"(fixed weights), rrf ({default_help})",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        help=f"dense weight of convex fusion; implies --fusion convex ({default_help})",
    )
    parser.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        help=f"how convex fusion scales each list's scores ({default_help})",
    )


def fusion_flags_given(args: argparse.Namespace) -> bool:
    return any(value is not None for value in (args.fusion, args.alpha, args.normalization))


def fusion_from(args: argparse.Namespace, base: FusionConfig | None = None) -> FusionConfig | None:
    """The hybrid fusion the flags ask for on top of ``base``; ``None`` when no flag was given."""
    if not fusion_flags_given(args):
        return base
    base = base or DEFAULT_FUSION
    method = args.fusion or base.method
    convex_flags = args.alpha is not None or args.normalization is not None
    if method == "calibrated" and convex_flags:
        if args.fusion is not None:
            raise InputError(
                "--alpha and --normalization set a convex fusion's fixed weights; calibrated "
                "fusion weighs each query's lists itself: drop them, or use --fusion convex"
            )
        method = "convex"  # a fixed weight asked for on a calibrated default
    if args.normalization not in (None, "min-max") and method != "convex":
        raise InputError(
            "--normalization scales convex fusion's scores; use it with --fusion convex"
        )
    alpha = args.alpha if args.alpha is not None else base.alpha
    return FusionConfig.hybrid(
        method,
        CONVEX_ALPHA if alpha is None else alpha,
        rrf_k=base.k,
        depth=base.depth,
        normalization=args.normalization or base.normalization,
    )


def add_index_search_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("approximate index settings (default: the index spec's)")
    group.add_argument("--ef-search", type=positive_int, help="HNSW candidate list size")
    group.add_argument("--nprobe", type=positive_int, help="IVF lists visited per query")
    group.add_argument(
        "--rescore", type=positive_int, help="candidates per result rescored with full vectors"
    )


def index_params_from(args: argparse.Namespace) -> dict[str, int]:
    given = {"efSearch": args.ef_search, "nprobe": args.nprobe, "rescore": args.rescore}
    return {name: value for name, value in given.items() if value is not None}


def add_pipeline_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pipeline",
        metavar="FILE",
        help="run a pipeline file (candidates, fusion, rerankers; see densekit pipeline show)",
    )


def pipeline_from(args: argparse.Namespace) -> Pipeline | None:
    if args.pipeline is None:
        return None
    if args.retriever is not None or fusion_flags_given(args):
        raise InputError(
            "--pipeline names its own retrievers and fusion; drop "
            "--retriever/--fusion/--alpha/--normalization"
        )
    return Pipeline.from_toml(args.pipeline)
