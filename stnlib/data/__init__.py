"""Datasets (by name), batches that keep their true transformation, and batch transforms."""
from . import cifar, mnist, placed_mnist  # noqa: F401  (register the datasets)
from .images import Batch, BatchLoader, DataSpec, ImageData, TrueTransform
from .registry import DATASETS, default_data_root, load_dataset, register_dataset
from .transforms import RandomRotation, augmentation_for

__all__ = ["Batch", "BatchLoader", "DataSpec", "ImageData", "TrueTransform", "DATASETS", "default_data_root",
           "load_dataset", "register_dataset", "RandomRotation", "augmentation_for"]
