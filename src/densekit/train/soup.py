"""Model soups (Wortsman et al., 2022): average the weights of models fine-tuned from one base.

Uniform soups average every ingredient. Greedy soups rank the ingredients by a dev metric and
add each in turn only if the soup's dev score does not drop. Ingredients must share an
architecture: the same weight files, tensor names and shapes (which checkpoints of one base
do); anything else is refused, naming the first difference.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from densekit.errors import InputError
from densekit.files.durability import publish_folder, refuse_to_replace
from densekit.train.result import CARD_FILE

SOUP_FILE = "densekit_soup.json"
WEIGHTS = "*.safetensors"


@dataclass(frozen=True)
class SoupReport:
    out: str
    ingredients: list[str]
    used: list[str]
    greedy: bool
    metric: str | None = None
    scores: dict[str, float] = field(default_factory=dict)  # each ingredient alone, on dev
    soup_score: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def soup_models(
    models: Sequence[str | Path],
    out: str | Path,
    *,
    greedy: bool = False,
    dev: str | Path | None = None,
    dev_split: str = "dev",
    metric: str = "nDCG@10",
    overwrite: bool = False,
) -> SoupReport:
    """Average ``models`` into ``out``; ``greedy`` needs a ``dev`` dataset to score on."""
    folders = [Path(m) for m in models]
    out = Path(out)
    if len(folders) < 2:
        raise InputError("a soup needs at least two models")
    if greedy and dev is None:
        raise InputError("a greedy soup ranks models on a dev set; pass --dev DATASET_DIR")
    refuse_to_replace(out, overwrite)
    files = check_same_architecture(folders)
    if not greedy or dev is None:
        report = SoupReport(str(out), _names(folders), _names(folders), greedy=False)
        _write_soup(folders, files, out, report)
        return report
    score = _dev_scorer(Path(dev), dev_split, metric)
    scores = {str(f): score(f) for f in folders}
    ranked = sorted(folders, key=lambda f: -scores[str(f)])
    used, best = [ranked[0]], scores[str(ranked[0])]
    with tempfile.TemporaryDirectory(prefix="densekit-soup-") as scratch:
        for candidate in ranked[1:]:
            trial = Path(scratch) / f"trial-{len(used)}"
            _write_soup([*used, candidate], files, trial, None)
            trial_score = score(trial)
            if trial_score >= best:
                used, best = [*used, candidate], trial_score
            shutil.rmtree(trial)
    report = SoupReport(
        str(out), _names(folders), _names(used), True, metric, scores, round(best, 4)
    )
    _write_soup(used, files, out, report)
    return report


def check_same_architecture(folders: Sequence[Path]) -> list[str]:
    """The weight files the ingredients share, relative to each folder; refuses a mismatch."""
    for folder in folders:
        if not folder.is_dir():
            raise InputError(f"{folder}: no such model folder")
    first = folders[0]
    files = sorted(str(p.relative_to(first)) for p in first.rglob(WEIGHTS))
    if not files:
        raise InputError(f"{first}: no .safetensors weights to average")
    shapes = {name: _shapes(first / name) for name in files}
    for folder in folders[1:]:
        theirs = sorted(str(p.relative_to(folder)) for p in folder.rglob(WEIGHTS))
        if theirs != files:
            raise InputError(
                f"{folder}: its weight files {theirs} differ from {first}'s {files}; a soup "
                "averages models of one architecture (fine-tuned from one base)"
            )
        for name in files:
            other = _shapes(folder / name)
            for tensor, shape in shapes[name].items():
                if other.get(tensor) != shape:
                    raise InputError(
                        f"{folder}: tensor {tensor!r} in {name} is {other.get(tensor)} where "
                        f"{first} has {shape}; a soup averages models of one architecture"
                    )
            extra = sorted(set(other) - set(shapes[name]))
            if extra:
                raise InputError(f"{folder}: tensor {extra[0]!r} in {name} is not in {first}")
    return files


def average_weights(paths: Sequence[Path]) -> dict[str, Any]:
    """Mean of each floating tensor (in float32, stored back in its dtype); other tensors
    (position ids, counters) must agree and are kept."""
    import torch
    from safetensors.torch import load_file

    states = [load_file(str(p)) for p in paths]
    averaged = {}
    for name, tensor in states[0].items():
        if tensor.is_floating_point():
            total = torch.stack([s[name].float() for s in states]).mean(dim=0)
            averaged[name] = total.to(tensor.dtype).contiguous()
        else:
            if any(not torch.equal(s[name], tensor) for s in states[1:]):
                raise InputError(f"{paths[0]}: tensor {name!r} differs between ingredients")
            averaged[name] = tensor.contiguous()
    return averaged


def _write_soup(
    folders: Sequence[Path], files: list[str], out: Path, report: SoupReport | None
) -> None:
    from safetensors.torch import save_file

    def write(folder: Path) -> None:
        shutil.copytree(folders[0], folder, dirs_exist_ok=True)
        for card in (CARD_FILE, SOUP_FILE):  # the first ingredient's, not ours
            (folder / card).unlink(missing_ok=True)
        for name in files:
            save_file(average_weights([f / name for f in folders]), str(folder / name))
        if report is not None:
            (folder / SOUP_FILE).write_text(json.dumps(report.to_dict(), indent=2))

    publish_folder(out, write)


def _dev_scorer(dataset: Path, split: str, metric: str) -> Callable[[Path], float]:
    from densekit.evaluate import evaluate
    from densekit.store import BuildOptions

    def score(model: Path) -> float:
        options = BuildOptions(model=str(model), retriever="dense", cache_dir=None, progress=False)
        report = evaluate(dataset, metrics=[metric], split=split, build_options=options)
        return float(report.metrics[metric])

    return score


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        names = handle.keys()  # a safetensors handle is not iterable itself
        return {name: tuple(handle.get_slice(name).get_shape()) for name in names}


def _names(folders: Sequence[Path]) -> list[str]:
    return [str(f) for f in folders]
