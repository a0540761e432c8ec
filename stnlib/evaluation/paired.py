"""Paired comparisons of two architectures scored on the very same rotated test images.

Runs trained with the same seed are scored on identical rotated test images (see
``test_correctness``), so accuracy differences can be measured image by image: the
differences between images and between seeds are the noise, not the images' difficulty.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

ALPHA = 0.05


@dataclass
class PairedComparison:
    """Architecture ``a`` against ``b``.

    ``difference``: mean accuracy of ``a`` minus ``b`` over seeds and images; ``low``, ``high``:
    its 95 % interval from a hierarchical bootstrap (seeds, then images within each seed);
    ``p_value``: the bootstrap's two-sided p-value for "no difference"; ``per_seed``: the
    accuracy difference of each seed; ``mcnemar_p``: per seed, the exact McNemar p-value on the
    discordant (image, pass) pairs.
    """

    a: str
    b: str
    difference: float
    low: float
    high: float
    p_value: float
    per_seed: list[float]
    mcnemar_p: list[float]

    @property
    def direction(self) -> int:
        """+1 if ``a`` is more accurate at the 5 % level, -1 if less, 0 if not resolved."""
        if self.low > 0:
            return 1
        if self.high < 0:
            return -1
        return 0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "PairedComparison":
        return cls(**values)

    def describe(self) -> str:
        return (f"{self.a} − {self.b}: {self.difference:+.4f} [{self.low:+.4f}, {self.high:+.4f}], "
                f"p = {self.p_value:.3g}")


def mcnemar_p_value(a: torch.Tensor, b: torch.Tensor) -> float:
    """Exact two-sided McNemar test for paired bool outcomes ``a``, ``b`` of the same shape."""
    only_a = int((a & ~b).sum())
    only_b = int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0
    from scipy.stats import binomtest  # here, not at the top: scipy.stats costs a second at every start

    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_comparison(a: list[torch.Tensor], b: list[torch.Tensor], names: tuple[str, str] = ("a", "b"),
                      replicates: int = 4000, seed: int = 0) -> PairedComparison:
    """Compare two architectures from their per-image correctness.

    Args:
        a, b: one ``(passes, N)`` bool tensor per seed, seed ``k`` of ``a`` scored on the same
            rotated images as seed ``k`` of ``b``.
        replicates: bootstrap replicates; each draws the seeds with replacement, then the N
            test images with replacement within each drawn seed.
    """
    _check_same_seeds(a, b)
    per_image = torch.stack([_share_right(x) - _share_right(y) for x, y in zip(a, b)]).double()
    return _bootstrap(per_image, names, replicates, seed, [mcnemar_p_value(x, y) for x, y in zip(a, b)])


def paired_interaction(a_deep: list[torch.Tensor], a_shallow: list[torch.Tensor], b_deep: list[torch.Tensor],
                       b_shallow: list[torch.Tensor], names: tuple[str, str, str, str] = ("a2", "a1", "b2", "b1"),
                       replicates: int = 4000, seed: int = 0) -> PairedComparison:
    """How much more ``a`` gains (or less it loses) than ``b`` from one setting to another, image by
    image: ``(a_deep − a_shallow) − (b_deep − b_shallow)``, with the hierarchical bootstrap of
    ``paired_comparison``. Each argument: one ``(passes, N)`` bool tensor per seed, all four scored
    on the same rotated images seed by seed. ``names`` in the same order; the result's ``a`` and ``b``
    read ``"(a2 − a1)"`` and ``"(b2 − b1)"``, and it has no McNemar p-values."""
    for other in (a_shallow, b_deep, b_shallow):
        _check_same_seeds(a_deep, other)
    per_image = torch.stack([(_share_right(w) - _share_right(x)) - (_share_right(y) - _share_right(z))
                             for w, x, y, z in zip(a_deep, a_shallow, b_deep, b_shallow)]).double()
    return _bootstrap(per_image, (f"({names[0]} − {names[1]})", f"({names[2]} − {names[3]})"), replicates, seed, [])


def _check_same_seeds(a: list, b: list) -> None:
    if len(a) != len(b) or not a:
        raise ValueError(f"paired comparison needs the same seeds on both sides, got {len(a)} and {len(b)}")


def _share_right(correct: torch.Tensor) -> torch.Tensor:
    """``(passes, N)`` bool -> ``(N,)`` float32: the share of passes each image was right in."""
    return correct.float().mean(0)


def _bootstrap(per_image: torch.Tensor, names: tuple[str, str], replicates: int, seed: int,
               mcnemar_p: list[float]) -> PairedComparison:
    """The comparison whose per-seed, per-image differences are ``per_image`` ``(S, N)``."""
    seeds, images = per_image.shape
    generator = torch.Generator().manual_seed(seed)
    replicate_means = []
    for chunk in torch.arange(replicates).split(500):
        seed_draw = torch.randint(seeds, (len(chunk), seeds), generator=generator)
        image_draw = torch.randint(images, (len(chunk), seeds, images), generator=generator)
        rows = per_image[seed_draw]  # (R, S, N)
        replicate_means.append(rows.gather(2, image_draw).mean((1, 2)))
    means = torch.cat(replicate_means)
    low, high = torch.quantile(means, torch.tensor([ALPHA / 2, 1 - ALPHA / 2], dtype=means.dtype)).tolist()
    tail = min((means <= 0).double().mean().item(), (means >= 0).double().mean().item())
    p_value = min(1.0, max(2 * tail, 1.0 / replicates))
    return PairedComparison(names[0], names[1], per_image.mean().item(), low, high, p_value,
                            per_image.mean(1).tolist(), mcnemar_p)
