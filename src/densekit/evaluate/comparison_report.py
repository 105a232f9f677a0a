"""A comparison written for people: a text table for the terminal, and a Markdown or HTML report
with plots (per-query differences against the baseline, metrics by cutoff).

Plots need matplotlib (``pip install 'densekit[plots]'``); HTML embeds them, Markdown links
PNG files written beside it.
"""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from densekit.errors import InputError, MissingDependencyError
from densekit.evaluate.comparison import Comparison, PairedResult

ALPHA = 0.05


def text_table(comparison: Comparison) -> str:
    """Scores per system (``*``: significantly different from the baseline, both corrected
    tests below 0.05), then each test against the baseline."""
    tests = {(t.system, t.measure): t for t in comparison.tests}
    width = max(len(name) for name in comparison.systems) + 2
    head = "system".ljust(width) + "".join(f"{m:>12}" for m in comparison.measures)
    lines = [head]
    for system, scores in comparison.scores.items():
        cells = []
        for measure in comparison.measures:
            test = tests.get((system, measure))
            mark = "*" if test is not None and test.significant(ALPHA) else " "
            cells.append(f"{scores[measure]:>11.4f}{mark}")
        label = f"{system} (baseline)" if system == comparison.baseline else system
        lines.append(label.ljust(width) + "".join(cells))
    lines += ["", f"against {comparison.baseline}, p corrected by {comparison.correction}:"]
    lines += [_test_line(test) for test in comparison.tests]
    return "\n".join(lines)


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
            _write_atomically(folder / f"{name}.png", png)
            links.append(f"![{name}]({folder.name}/{name}.png)")
        text = _markdown(comparison) + "\n" + "\n\n".join(links) + "\n"
    else:
        text = _html(comparison, plots)
    _write_atomically(path, text.encode("utf-8"))
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
    tests = {(t.system, t.measure): t for t in comparison.tests}
    lines = [
        f"# {comparison.dataset} ({comparison.split}): {len(comparison.systems)} systems",
        "",
        "| system | " + " | ".join(comparison.measures) + " |",
        "|---|" + "---|" * len(comparison.measures),
    ]
    for system, scores in comparison.scores.items():
        cells = []
        for measure in comparison.measures:
            test = tests.get((system, measure))
            bold = test is not None and test.significant(ALPHA)
            cells.append(f"**{scores[measure]:.4f}**" if bold else f"{scores[measure]:.4f}")
        label = f"{system} (baseline)" if system == comparison.baseline else system
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Bold: both paired tests against {comparison.baseline} below {ALPHA} after "
        f"{comparison.correction} correction over {len(comparison.tests)} tests.",
        "",
        "| system | measure | difference | win/tie/loss | t-test p (corrected) | "
        "randomisation p (corrected) |",
        "|---|---|---|---|---|---|",
    ]
    for t in comparison.tests:
        lines.append(
            f"| {t.system} | {t.measure} | {t.difference:+.4f} | {t.wins}/{t.ties}/{t.losses} "
            f"| {_p(t.t_test_p)} ({_p(t.t_test_p_corrected)}) "
            f"| {_p(t.randomisation_p)} ({_p(t.randomisation_p_corrected)}) |"
        )
    return "\n".join(lines) + "\n"


def _html(comparison: Comparison, plots: dict[str, bytes]) -> str:
    tests = {(t.system, t.measure): t for t in comparison.tests}
    e = html.escape
    head = "".join(f"<th>{e(m)}</th>" for m in comparison.measures)
    rows = []
    for system, scores in comparison.scores.items():
        cells = []
        for measure in comparison.measures:
            test = tests.get((system, measure))
            value = f"{scores[measure]:.4f}"
            bold = test is not None and test.significant(ALPHA)
            cells.append(f"<td><b>{value}</b></td>" if bold else f"<td>{value}</td>")
        label = f"{system} (baseline)" if system == comparison.baseline else system
        rows.append(f"<tr><th>{e(label)}</th>{''.join(cells)}</tr>")
    paired = "".join(
        f"<tr><td>{e(t.system)}</td><td>{e(t.measure)}</td><td>{t.difference:+.4f}</td>"
        f"<td>{t.wins}/{t.ties}/{t.losses}</td>"
        f"<td>{_p(t.t_test_p)} ({_p(t.t_test_p_corrected)})</td>"
        f"<td>{_p(t.randomisation_p)} ({_p(t.randomisation_p_corrected)})</td></tr>"
        for t in comparison.tests
    )
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
<table><tr><th>system</th><th>measure</th><th>difference</th><th>win/tie/loss</th>
<th>t-test p (corrected)</th><th>randomisation p (corrected)</th></tr>{paired}</table>
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


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as any file the user writes, not mkstemp's 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
