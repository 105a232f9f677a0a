"""A comparison written for people: a text table for the terminal, and a Markdown or HTML report
with plots (per-query differences against the baseline, metrics by cutoff).

Plots need matplotlib (``pip install 'densekit[plots]'``); HTML embeds them, Markdown links
PNG files written beside it.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from densekit.errors import InputError, MissingDependencyError
from densekit.evaluate.comparison import Comparison, PairedResult
from densekit.files.durability import atomic_write_bytes, atomic_write_text

ALPHA = 0.05


def text_table(comparison: Comparison) -> str:
    """Scores per system (``*``: significantly different from the baseline, both corrected
    tests below 0.05), then each test against the baseline."""
    width = max(len(name) for name in comparison.systems) + 2
    head = "system".ljust(width) + "".join(f"{m:>12}" for m in comparison.measures)
    lines = [head]
    for label, cells in _score_rows(comparison):
        marked = "".join(f"{score:>11.4f}{'*' if better else ' '}" for score, better in cells)
        lines.append(label.ljust(width) + marked)
    lines += ["", f"against {comparison.baseline}, p corrected by {comparison.correction}:"]
    lines += [_test_line(test) for test in comparison.tests]
    return "\n".join(lines)


def _score_rows(comparison: Comparison) -> list[tuple[str, list[tuple[float, bool]]]]:
    """Each system's label and, per measure, its score and whether both corrected tests
    against the baseline are below ``ALPHA``: what every table marks."""
    tests = {(t.system, t.measure): t for t in comparison.tests}
    rows = []
    for system, scores in comparison.scores.items():
        label = f"{system} (baseline)" if system == comparison.baseline else system
        cells = []
        for measure in comparison.measures:
            test = tests.get((system, measure))
            cells.append((scores[measure], test is not None and test.significant(ALPHA)))
        rows.append((label, cells))
    return rows


# The columns of the paired tests' table, and a test's cells in them.
TEST_COLUMNS = (
    "system",
    "measure",
    "difference",
    "win/tie/loss",
    "t-test p (corrected)",
    "randomisation p (corrected)",
)


def _test_cells(test: PairedResult) -> list[str]:
    return [
        test.system,
        test.measure,
        f"{test.difference:+.4f}",
        f"{test.wins}/{test.ties}/{test.losses}",
        f"{_p(test.t_test_p)} ({_p(test.t_test_p_corrected)})",
        f"{_p(test.randomisation_p)} ({_p(test.randomisation_p_corrected)})",
    ]


def _test_line(test: PairedResult) -> str:
    return (
        f"  {test.system} {test.measure}: {test.difference:+.4f}  "
        f"win/tie/loss {test.wins}/{test.ties}/{test.losses}  "
        f"t-test p {_p(test.t_test_p)} ({_p(test.t_test_p_corrected)})  "
        f"randomisation p {_p(test.randomisation_p)} ({_p(test.randomisation_p_corrected)})"
    )


def _p(value: float) -> str:
    """A p-value as shown: 0 from the randomisation test means no flip reached the difference."""
    return "<1e-4" if value == 0 else f"{value:.3g}"


def write_report(comparison: Comparison, path: str | Path) -> Path:
    """The report at ``path``: HTML (``.html``) with its plots inside, or Markdown (``.md``)
    with them in ``NAME-plots/``. Written whole, then renamed into place."""
    path = check_report_path(path)
    plots = _plots(comparison)
    if path.suffix.lower() == ".md":
        folder = path.with_name(path.stem + "-plots")
        folder.mkdir(exist_ok=True)
        links = []
        for name, png in plots.items():
            atomic_write_bytes(folder / f"{name}.png", png)
            links.append(f"![{name}]({folder.name}/{name}.png)")
        text = _markdown(comparison) + "\n" + "\n\n".join(links) + "\n"
    else:
        text = _html(comparison, plots)
    atomic_write_text(path, text)
    return path


def check_report_path(path: str | Path) -> Path:
    """Refuse, before any work, a report that could not be written: its name, its folder, or
    matplotlib missing for its plots."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm", ".md"):
        raise InputError(f"{path}: a report is .html or .md; name the file so")
    if not path.resolve().parent.is_dir():
        raise InputError(f"{path}: its folder does not exist; create it or pick another path")
    try:
        import matplotlib  # noqa: F401 - the plots need it
    except ImportError:
        raise MissingDependencyError("matplotlib", "plots") from None
    return path


def _markdown(comparison: Comparison) -> str:
    lines = [
        f"# {comparison.dataset} ({comparison.split}): {len(comparison.systems)} systems",
        "",
        "| system | " + " | ".join(comparison.measures) + " |",
        "|---|" + "---|" * len(comparison.measures),
    ]
    for label, cells in _score_rows(comparison):
        shown = [f"**{score:.4f}**" if better else f"{score:.4f}" for score, better in cells]
        lines.append(f"| {label} | " + " | ".join(shown) + " |")
    lines += [
        "",
        f"Bold: both paired tests against {comparison.baseline} below {ALPHA} after "
        f"{comparison.correction} correction over {len(comparison.tests)} tests.",
        "",
        "| " + " | ".join(TEST_COLUMNS) + " |",
        "|" + "---|" * len(TEST_COLUMNS),
    ]
    lines += ["| " + " | ".join(_test_cells(t)) + " |" for t in comparison.tests]
    return "\n".join(lines) + "\n"


def _html(comparison: Comparison, plots: dict[str, bytes]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(m)}</th>" for m in comparison.measures)
    rows = []
    for label, cells in _score_rows(comparison):
        shown = "".join(
            f"<td><b>{score:.4f}</b></td>" if better else f"<td>{score:.4f}</td>"
            for score, better in cells
        )
        rows.append(f"<tr><th>{e(label)}</th>{shown}</tr>")
    paired = "".join(
        "<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in _test_cells(t)) + "</tr>"
        for t in comparison.tests
    )
    columns = "".join(f"<th>{e(column)}</th>" for column in TEST_COLUMNS)
    images = "".join(
        f'<figure><img alt="{e(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}"><figcaption>{e(name)}</figcaption></figure>'
        for name, png in plots.items()
    )
    title = f"{comparison.dataset} ({comparison.split}): {len(comparison.systems)} systems"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;
text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>{e(title)}</h1>
<table><tr><th>system</th>{head}</tr>{"".join(rows)}</table>
<p>Bold: both paired tests against {e(comparison.baseline)} below {ALPHA} after
{e(comparison.correction)} correction over {len(comparison.tests)} tests.</p>
<table><tr>{columns}</tr>{paired}</table>
{images}
</body></html>
"""


def _plots(comparison: Comparison) -> dict[str, bytes]:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("matplotlib", "plots") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, bytes] = {}
    measure = comparison.measures[0]
    others = [s for s in comparison.systems if s != comparison.baseline]
    figure, axes = plt.subplots(len(others), 1, figsize=(8, 2.4 * len(others)), squeeze=False)
    base = comparison.per_query[comparison.baseline]
    for axis, system in zip(axes[:, 0], others, strict=True):
        mine = comparison.per_query[system]
        differences = sorted(
            (mine[q][measure] - base[q][measure] for q in base if q in mine), reverse=True
        )
        colours = ["#2a7" if d > 0 else "#c44" for d in differences]
        axis.bar(range(len(differences)), differences, color=colours, width=1.0)
        axis.axhline(0, color="#333", linewidth=0.6)
        axis.set_ylabel(f"Δ {measure}")
        axis.set_title(f"{system} − {comparison.baseline}, per query (sorted)", fontsize=9)
        axis.set_xticks([])
    figure.tight_layout()
    plots["per-query-differences"] = _png(figure)
    plt.close(figure)
    for family in next(iter(comparison.by_cutoff.values()), {}):
        figure, axis = plt.subplots(figsize=(6, 3.6))
        for system, curves in comparison.by_cutoff.items():
            cutoffs = sorted(curves[family])
            axis.plot(cutoffs, [curves[family][k] for k in cutoffs], marker="o", label=system)
        axis.set_xscale("log")
        axis.set_xlabel("cutoff k")
        axis.set_ylabel(f"{family}@k")
        axis.legend(fontsize=8)
        figure.tight_layout()
        plots[f"{family}-by-cutoff"] = _png(figure)
        plt.close(figure)
    return plots


def _png(figure: Any) -> bytes:  # a matplotlib Figure
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
