"""Run a model over (transformed) test data and keep everything plots need."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import BatchLoader, RandomRotation
from ..device import autocast
from ..models.modes import eval_mode

# Images per forward pass in evaluation. On the CPU, batches of 250 keep a CNN's activations near the
# caches: with one thread, 1.4x (STN-C0) to 1.9x (STN-C1) faster than batches of 1,000, to the same bits.
EVAL_BATCH_SIZE = 250


@dataclass
class Predictions:
    """One record per test image and pass.

    ``labels``, ``predicted``: ``(N,)`` int64; ``true_angle``: ``(N,)`` degrees applied to the
    input; ``thetas``: ``(N, S, 2, 3)``, the composed theta of each of the model's S ST
    applications (``S == 0`` without STs); ``st_index``: the placement index of each.
    ``true_scale`` ``(N,)`` and ``true_shift`` ``(N, 2)`` (normalised units, x right, y down):
    the zoom and shift applied to the input, where the transformation has them (else ``None``).
    """

    labels: torch.Tensor
    predicted: torch.Tensor
    true_angle: torch.Tensor
    thetas: torch.Tensor
    st_index: list[int]
    true_scale: torch.Tensor | None = None
    true_shift: torch.Tensor | None = None

    @property
    def correct(self) -> torch.Tensor:
        """``(N,)`` bool; with several labels per image, all of them right."""
        hits = self.predicted == self.labels
        return hits.all(-1) if hits.dim() == 2 else hits


@torch.no_grad()
def collect_predictions(model, images: torch.Tensor, labels: torch.Tensor, augmentation: RandomRotation,
                        passes: int = 1, seed: int = 0, precision: str = "fp32",
                        batch_size: int = EVAL_BATCH_SIZE) -> Predictions:
    """Predictions and thetas for ``passes`` passes over ``images`` ``(N, C, H, W)`` with fresh transforms."""
    with eval_mode(model):
        device = next(model.parameters()).device
        generator = torch.Generator().manual_seed(seed)
        parts = {"labels": [], "predicted": [], "true_angle": [], "thetas": [], "true_scale": [], "true_shift": []}
        st_index: list[int] = []
        for _ in range(passes):
            for batch in BatchLoader(images.to(device), labels.to(device), batch_size):
                batch = augmentation(batch, generator)
                with autocast(device, precision):
                    seen = model.inspect(batch.images)
                st_index = [r.index for r in seen.sts]
                thetas = (torch.stack([r.theta.float() for r in seen.sts], 1) if seen.sts
                          else torch.zeros(len(batch.labels), 0, 2, 3, device=device))
                for key, value in (("labels", batch.labels), ("predicted", seen.logits.argmax(-1)),
                                   ("true_angle", batch.true.angle), ("thetas", thetas),
                                   ("true_scale", batch.true.scale), ("true_shift", batch.true.shift)):
                    if value is not None:
                        parts[key].append(value.cpu())
    return Predictions(**{k: torch.cat(v) if v else None for k, v in parts.items()}, st_index=st_index)
