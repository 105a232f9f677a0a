"""Evaluation: BEIR datasets, trec_eval-exact metrics, run files."""

from densekit.evaluate.beir import BeirDataset, load_beir, read_qrels, read_queries
from densekit.evaluate.evaluation import EvalReport, evaluate, evaluate_run
from densekit.evaluate.metrics import DEFAULT_METRICS, MetricResult, compute_metrics, parse_metrics
from densekit.evaluate.runfile import read_run, write_run
from densekit.evaluate.tuning import FUSION_GRID, FusionTuning, tune_fusion

__all__ = [
    "DEFAULT_METRICS",
    "FUSION_GRID",
    "BeirDataset",
    "EvalReport",
    "FusionTuning",
    "MetricResult",
    "compute_metrics",
    "evaluate",
    "evaluate_run",
    "load_beir",
    "parse_metrics",
    "read_qrels",
    "read_queries",
    "read_run",
    "tune_fusion",
    "write_run",
]
