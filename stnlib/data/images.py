"""In-memory image datasets and the batches drawn from them."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from ..errors import DataError


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data; saved with every run."""

    name: str
    image_shape: tuple[int, ...]  # (C, H, W)
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    padding_mode: str = "zeros"
    st_downsample: int = 1

    @classmethod
    def from_dict(cls, values: dict) -> "DataSpec":
        return cls(**{**values, "image_shape": tuple(values["image_shape"]), "mean": tuple(values["mean"]),
                      "std": tuple(values["std"])})


@dataclass
class ImageData:
    """A dataset held as tensors.

    ``*_images`` are float32 ``(N, C, H, W)`` pixel intensities in ``[0, 1]``;
    ``*_labels`` are int64 ``(N,)`` class indices (``(N, K)`` for multi-label data).
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]  # per channel, of the training images
    std: tuple[float, ...]
    padding_mode: str = "zeros"  # padding of the ST's resampling
    st_downsample: int = 1  # the ST's output is smaller than its input by this factor
    classes: list[str] = field(default_factory=list)
    kind: str = "rotation"  # the batch transformation: rotation, translate, scale or plankton
    canvas: int | None = None  # translate/scale: stored digits are drawn on a canvas of this side
    log2_scale: tuple[float, float] = (-1.0, 2.0)  # scale: the zoom is 2**u, u uniform in this range
    max_shift: float | None = None  # translate: largest shift in pixels (None: anywhere on the canvas)
    clutter: bool = True  # translate/scale: crops of other digits added around the digit

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of what the model sees."""
        channels, height, width = self.train_images.shape[1:]
        return (channels, self.canvas, self.canvas) if self.canvas else (channels, height, width)

    def check_labels(self) -> None:
        """Labels must be class indices in ``[0, num_classes)``; a ``DataError`` names the first that is not."""
        for split, labels in (("training", self.train_labels), ("test", self.test_labels)):
            wrong = ((labels < 0) | (labels >= self.num_classes)).reshape(len(labels), -1).any(1)
            if wrong.any():
                index = int(wrong.nonzero()[0])
                raise DataError(f"{self.name}: {split} image {index} has label {labels[index].tolist()}; labels "
                                f"must be class indices from 0 to {self.num_classes - 1}")

    @property
    def spec(self) -> "DataSpec":
        return DataSpec(self.name, self.image_shape, self.num_classes, self.mean, self.std,
                        self.padding_mode, self.st_downsample)

    def head(self, train: int | None = None, test: int | None = None) -> "ImageData":
        """A copy holding only the first ``train`` training and ``test`` test images (``None``: all)."""
        return dataclasses.replace(self, train_images=self.train_images[:train], train_labels=self.train_labels[:train],
                                   test_images=self.test_images[:test], test_labels=self.test_labels[:test])

    def to(self, device: torch.device | str) -> "ImageData":
        """A copy whose tensors live on ``device``."""
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in vars(self).items()}
        return ImageData(**moved)


@dataclass
class TrueTransform:
    """What was done to each image of a batch; fields are ``None`` when not applied.

    ``angle``: ``(B,)`` counter-clockwise degrees; ``scale``: ``(B,)`` zoom factor;
    ``shift``: ``(B, 2)`` content displacement in normalised units (x right, y down).
    """

    angle: torch.Tensor | None = None
    scale: torch.Tensor | None = None
    shift: torch.Tensor | None = None


@dataclass
class Batch:
    """``images``: ``(B, C, H, W)``; ``labels``: ``(B,)``; ``index``: ``(B,)`` positions in the split."""

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    true: TrueTransform = field(default_factory=TrueTransform)


class BatchLoader:
    """Batches of a split that already lives on the training device.

    No per-sample Python work: each batch is one index gather. Shuffling uses
    ``generator`` (a CPU generator), so the order depends only on its seed.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False, generator: torch.Generator | None = None):
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.generator = batch_size, shuffle, generator

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self):
        n = len(self.images)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.images.device)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            yield Batch(self.images[index], self.labels[index], index)
