"""Training: hard-negative mining and model fine-tuning."""

from densekit.train.negatives import MiningConfig, mine_negatives
from densekit.train.reranker import RerankerTraining, TrainingReport, train_reranker

__all__ = ["MiningConfig", "RerankerTraining", "TrainingReport", "mine_negatives", "train_reranker"]
