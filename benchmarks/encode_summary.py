"""What benchmarks/encode.py's numbers say: the speed targets against sentence-transformers
and the fastest anchor at equal quality, and the speed/quality plot."""

from __future__ import annotations

import statistics
from pathlib import Path

from _common import RESULTS

ANCHOR = "sentence-transformers (anchor)"

QUALITY_BOUND = 0.005  # nDCG@10 below fp32 that still counts as the same quality


def speed_targets(data: dict, setting: str = "clean") -> dict | None:
    """The fastest densekit backend and the fastest anchor within QUALITY_BOUND nDCG@10 of
    fp32, and how they compare (issue targets: >= 3x sentence-transformers, >= 1.3x the
    anchor)."""
    measured = data.get("throughput", {}).get(setting)
    quality = data.get("scifact_ndcg_at_10", {})
    reference = quality.get("sentence-transformers")
    if not measured or reference is None:
        return None

    def fastest(rows: dict, scores: dict) -> str | None:
        kept = [
            n for n in rows if scores.get(n) is not None and scores[n] >= reference - QUALITY_BOUND
        ]
        return max(kept, key=lambda n: rows[n]["docs_per_second"], default=None)

    ours = fastest(measured["densekit"], quality)
    anchor = fastest(measured.get("anchors", {}), data.get("anchor_ndcg_at_10", {}))
    if ours is None:
        return None
    speed = measured["densekit"][ours]["docs_per_second"]
    result = {
        "setting": setting,
        "fp32_ndcg_at_10": reference,
        "densekit_fastest": ours,
        "densekit_docs_per_second": speed,
        "vs_sentence_transformers": measured["densekit"][ours]["ratio_to_sentence_transformers"],
        "fastest_anchor": anchor,
    }
    if anchor is not None:
        anchor_speed = measured["anchors"][anchor]["docs_per_second"]
        result["anchor_docs_per_second"] = anchor_speed
        # The median of per-round ratios, as every other ratio: drift between rounds cancels.
        ours_rounds = measured["densekit"][ours]["ratio_per_round"]
        anchor_rounds = measured["anchors"][anchor]["ratio_per_round"]
        per_round = [a / b for a, b in zip(ours_rounds, anchor_rounds, strict=True)]
        result["vs_fastest_anchor"] = round(statistics.median(per_round), 3)
    return result


def speed_quality_plot(data: dict) -> Path | None:
    """docs/s (clean processes) against SciFact nDCG@10 for every backend and anchor."""
    clean = data.get("throughput", {}).get("clean")
    if not clean:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speed = {ANCHOR: clean["sentence_transformers_docs_per_second"]}
    speed |= {f"densekit {n}": row["docs_per_second"] for n, row in clean["densekit"].items()}
    speed |= {n: row["docs_per_second"] for n, row in clean.get("anchors", {}).items()}
    quality = {f"densekit {n}": v for n, v in data.get("scifact_ndcg_at_10", {}).items()}
    quality |= data.get("anchor_ndcg_at_10", {})
    quality.setdefault(ANCHOR, quality.get("densekit sentence-transformers"))
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, docs_per_second in speed.items():
        if quality.get(name) is None:
            continue
        marker = "o" if name.startswith("densekit") else "s"
        axes.scatter(docs_per_second, quality[name], marker=marker)
        axes.annotate(
            name,
            (docs_per_second, quality[name]),
            fontsize=7,
            xytext=(4, 2),
            textcoords="offset points",
        )
    axes.set_xlabel("documents/s (MiniLM, clean process)")
    axes.set_ylabel("SciFact test nDCG@10")
    axes.set_title("Encoding speed and quality: densekit backends (o) and anchors (s)")
    figure.tight_layout()
    path = RESULTS / "encode.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
