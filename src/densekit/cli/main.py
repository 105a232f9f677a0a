"""Entry point: parse arguments, run a command, turn densekit errors into exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from densekit import __version__
from densekit.cli import (
    adapt_command,
    bench_index_command,
    change_commands,
    check_command,
    compare_command,
    encode_command,
    eval_command,
    index_command,
    info_command,
    limits_command,
    make_queries_command,
    mine_negatives_command,
    models_command,
    pipeline_command,
    reindex_command,
    reshard_command,
    search_command,
    serve_command,
    soup_command,
    split_command,
    train_bpv_command,
    train_command,
    train_defsent_command,
    train_llm_command,
    train_reranker_command,
    tune_command,
)
from densekit.encode.allocator import tune_for_command
from densekit.encode.devices import using_device
from densekit.encode.precision import PRECISIONS, using_precision
from densekit.errors import DensekitError

COMMANDS = (
    models_command,
    index_command,
    change_commands,
    encode_command,
    search_command,
    eval_command,
    compare_command,
    make_queries_command,
    split_command,
    limits_command,
    tune_command,
    pipeline_command,
    info_command,
    check_command,
    reshard_command,
    reindex_command,
    bench_index_command,
    mine_negatives_command,
    train_command,
    train_llm_command,
    train_reranker_command,
    train_bpv_command,
    train_defsent_command,
    soup_command,
    adapt_command,
    serve_command,
)


# Commands that load an encoder, sparse encoder or reranker to encode, search or rerank; the
# training commands leave the device to their training loop, `limits` has a --device of its own.
RUNS_MODELS = frozenset(
    {
        "index", "encode", "add", "update", "search", "eval", "compare", "tune", "reindex",
        "reshard", "mine-negatives", "adapt", "serve",
    }
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="densekit",
        description="Dense text retrieval: build, search and evaluate collections.",
    )
    parser.add_argument("--version", action="version", version=f"densekit {__version__}")
    parser.add_argument(
        "--no-allocator-tuning",
        action="store_true",
        help="leave glibc's malloc settings alone (default: keep freed encoding buffers in the "
        "heap; DENSEKIT_MALLOC_TUNING=0 does the same)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    for name, command_parser in subparsers.choices.items():
        if name in RUNS_MODELS:
            command_parser.add_argument(
                "--device",
                metavar="DEVICE",
                help="where models run: auto (a GPU when there is one, the default), cpu, "
                "cuda, cuda:N, mps",
            )
            command_parser.add_argument(
                "--precision",
                choices=PRECISIONS,
                help="what sentence-transformers encoders and cross-encoders compute in: fp32 "
                "(the default), fp16 (on a GPU), bf16, auto (fp16 on a CUDA GPU, else fp32); "
                "the OpenVINO backends take bf16 where the CPU has it natively; torch-int8, "
                "ONNX, SPLADE, token-vector and decoder-LLM models keep their own",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    tune_for_command(disabled=args.no_allocator_tuning)
    try:
        with (
            using_device(getattr(args, "device", None)),
            using_precision(getattr(args, "precision", None)),
        ):
            code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a reader that left shows here, not at the interpreter's exit
        return code
    except BrokenPipeError:  # `densekit info DIR | head -1`: the reader has all it wanted
        _silence_stdout()
        return 0
    except DensekitError as exc:
        print(f"densekit: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a missing folder, a permission: not a bug to trace
        print(f"densekit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "densekit: interrupted; nothing unfinished was published (finished shards are kept: "
            "rerun the same command to resume)",
            file=sys.stderr,
        )
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still buffered
    does not fail again ("Exception ignored ... BrokenPipeError")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor behind stdout (captured): nothing to do
        pass


if __name__ == "__main__":
    sys.exit(main())
