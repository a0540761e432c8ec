"""Evaluation: accuracy, and data for the study's plots."""
from .accuracy import Score, evaluate, predict, test_accuracy

__all__ = ["Score", "evaluate", "predict", "test_accuracy"]
