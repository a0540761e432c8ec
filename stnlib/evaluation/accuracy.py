"""Loss and accuracy on (randomly transformed) test data, batched, no per-sample work."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data import Batch, BatchLoader, RandomRotation
from ..device import autocast

EVAL_BATCH_SIZE = 1000


@dataclass
class Score:
    loss: float  # mean cross-entropy
    accuracy: float  # share of correct predictions, in [0, 1]


@torch.no_grad()
def evaluate(model, images: torch.Tensor, labels: torch.Tensor, augmentation: RandomRotation,
             generator: torch.Generator | None = None, precision: str = "fp32",
             batch_size: int = EVAL_BATCH_SIZE) -> Score:
    """One pass over ``images`` ``(N, C, H, W)`` with fresh random transformations.

    The model runs in eval mode; its training mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    loss_sum, correct = torch.zeros((), device=images.device), torch.zeros((), device=images.device)
    for batch in BatchLoader(images, labels, batch_size):
        batch = augmentation(batch, generator)
        with autocast(images.device, precision):
            logits = model(batch.images)
        loss_sum += F.cross_entropy(logits.float(), batch.labels, reduction="sum")
        correct += (logits.argmax(1) == batch.labels).sum()
    model.train(was_training)
    n = len(images)
    return Score(loss=loss_sum.item() / n, accuracy=correct.item() / n)


def test_accuracy(model, images: torch.Tensor, labels: torch.Tensor, augmentation: RandomRotation,
                  passes: int = 10, seed: int = 0, precision: str = "fp32") -> list[float]:
    """Accuracy of each of ``passes`` passes, each with fresh random transformations.

    The original's final score is the mean of 10 such passes.
    """
    generator = torch.Generator().manual_seed(seed)
    return [evaluate(model, images, labels, augmentation, generator, precision).accuracy for _ in range(passes)]


def predict(model, batch: Batch, precision: str = "fp32") -> torch.Tensor:
    """Logits ``(B, num_classes)`` in float32, without gradients, in eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad(), autocast(batch.images.device, precision):
        logits = model(batch.images).float()
    model.train(was_training)
    return logits
