"""Loss and correctness for one label per image ``(B,)`` or several (``(B, K)``, e.g. SVHN's digit positions).

Logits are ``(B, C)`` for one label and ``(B, K, C)`` for K labels; with several labels the loss
is the sum of the per-position cross-entropies and an image counts as correct only when every
position is.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy, computed in float32 (float64 for float64 logits) whatever the autocast dtype."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if logits.dim() == 3:
        return sum(F.cross_entropy(logits[:, k], labels[:, k], reduction=reduction) for k in range(logits.shape[1]))
    return F.cross_entropy(logits, labels, reduction=reduction)


def predicted_labels(logits: torch.Tensor) -> torch.Tensor:
    """``(B,)`` or ``(B, K)`` class indices."""
    return logits.argmax(-1)


def correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: every label of the image predicted right."""
    hits = predicted_labels(logits) == labels
    return hits.all(-1) if hits.dim() == 2 else hits
