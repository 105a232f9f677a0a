"""The limits of single-vector retrieval: experiments from the LIMIT paper (Weller et al.)."""

from densekit.evaluate.limits.critical_n import PAPER_FIT, find_critical_n, paper_critical_n
from densekit.evaluate.limits.experiment import run_experiment
from densekit.evaluate.limits.free_embedding import FitResult, FitSettings, fit

__all__ = [
    "PAPER_FIT",
    "FitResult",
    "FitSettings",
    "find_critical_n",
    "fit",
    "paper_critical_n",
    "run_experiment",
]
