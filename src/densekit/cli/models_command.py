"""`densekit models`: every named model, the string that selects it, and whether its weights
are here offline."""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import asdict, dataclass

from densekit import __version__
from densekit.cli.output import print_json
from densekit.encode import DEFAULT_MODEL, REGISTRY
from densekit.encode.causal import (
    SMOLLM2,
    SMOLLM2_DIMENSION,
    SMOLLM2_INSTALL,
    SMOLLM2_PACKAGE,
)
from densekit.encode.decoder import LLM_PREFIX

# Models named by their kind rather than listed: (what --model takes, what it is).
OTHER_NAMES = (
    (f"{LLM_PREFIX}NAME#pooling=mean", "a decoder LLM (a folder or hub name) as an encoder"),
    ("openai:MODEL@BASE_URL", "a model behind an OpenAI-compatible embeddings endpoint"),
    ("bpv:DIR", "Binary PV codes trained by `densekit train-bpv`"),
    ("PATH or HUB_NAME", "any sentence-transformers model"),
)


@dataclass(frozen=True)
class ListedModel:
    select: str  # what --model takes
    dimension: int
    where: str  # bundled | bundled, not installed | hub
    description: str
    install: str | None
    default: bool = False

    @property
    def offline(self) -> bool:
        return self.where == "bundled"


def _where(installed: bool, install: str | None) -> str:
    if install is None:
        return "hub"
    return "bundled" if installed else "bundled, not installed"


def listed_models() -> list[ListedModel]:
    rows = [
        ListedModel(
            select=entry.name,
            dimension=entry.dimension,
            where=_where(entry.available_offline, entry.install),
            description=entry.description,
            install=entry.install,
            default=entry.name == DEFAULT_MODEL,
        )
        for entry in REGISTRY.values()
    ]
    smollm2_installed = importlib.util.find_spec(SMOLLM2_PACKAGE) is not None
    rows.append(
        ListedModel(
            select=f"{LLM_PREFIX}{SMOLLM2}",
            dimension=SMOLLM2_DIMENSION,
            where=_where(smollm2_installed, SMOLLM2_INSTALL),
            description="SmolLM2-135M-Instruct, a decoder LLM read as an encoder (bundled GGUF, "
            "offline; also the LLM reranker's default)",
            install=SMOLLM2_INSTALL,
        )
    )
    return rows


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the named models")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rows = listed_models()
    if args.json:
        print_json([{"name": row.select, **asdict(row), "offline": row.offline} for row in rows])
        return 0
    print(f"densekit {__version__}")
    width = max(len(row.select) for row in rows)
    print(f"{'--model':<{width}} {'dim':>5}  {'where':<8} description")
    for row in rows:
        mark = " (default)" if row.default else ""
        where = "absent" if row.where == "bundled, not installed" else row.where
        print(f"{row.select:<{width}} {row.dimension:>5}  {where:<8} {row.description}{mark}")
        if where == "absent":
            print(f"{'':<{width + 17}}bundled, not installed: {row.install}")
    print("\nOther models, named by their kind:")
    for select, meaning in OTHER_NAMES:
        print(f"  {select:<28} {meaning}")
    return 0
