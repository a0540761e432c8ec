"""The rest of the original's datasets and models, on fixtures in their real file formats."""
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from stnlib import learn
from stnlib.data import load_dataset
from stnlib.data.images import Batch
from stnlib.errors import DataError
from stnlib.evaluation import accuracy_under_rotations
from stnlib.models import STNetwork
from stnlib.prepare import main as prepare_main
from stnlib.prepare import read_digit_struct
from conftest import require, write_precomputed

TRAIN = ["-e", "1", "-b", "8", "-o", "adam", "--lr", "0.001", "--seed", "0", "-q", "--eval-passes", "1"]


def cli(*args) -> int:
    return learn.main(list(args))


# ----- translated and scaled MNIST -----
@pytest.mark.parametrize("name, side, kind", [("translate5k", 60, "translate"), ("scale5k", 112, "scale")])
def test_placed_digits_keep_their_true_shift_and_scale(name, side, kind):
    from stnlib.data.transforms import augmentation_for
    from stnlib import RunConfig

    data = load_dataset(name)
    assert data.image_shape == (1, side, side) and data.kind == kind
    transform = augmentation_for(RunConfig(epochs=1), data)
    batch = transform(Batch(data.test_images[:16], data.test_labels[:16], torch.arange(16)),
                      torch.Generator().manual_seed(0))
    assert batch.images.shape == (16, 1, side, side) and 0 <= batch.images.min() and batch.images.max() <= 1
    assert batch.true.shift.shape == (16, 2) and batch.true.scale.shape == (16,)
    if kind == "translate":
        assert data.st_downsample == 2 and batch.true.scale.eq(1).all() and batch.true.shift.abs().max() > 0.1
        # the digit's centre of mass moves with the true shift (clutter aside)
        clean = transform._place(data.test_images[:16], batch.true.scale, batch.true.shift)
        xs = torch.linspace(-1, 1, side + 1)[:-1] + 1 / side
        centre_x = (clean[:, 0].sum(1) * xs).sum(1) / clean[:, 0].sum((1, 2))
        assert torch.corrcoef(torch.stack([centre_x, batch.true.shift[:, 0]]))[0, 1] > 0.95
    else:
        assert batch.true.shift.eq(0).all() and 0.5 <= batch.true.scale.min() and batch.true.scale.max() <= 4


@pytest.mark.parametrize("name, loc", [("translate5k", "CNNt"), ("scale5k", "CNNmp")])
def test_placed_mnist_trains_through_the_cli(name, loc, tmp_path):
    assert cli("-d", name, "-m", "CNN", "-l", loc, "-p", "0", "--limit", "32", *TRAIN, "-n", str(tmp_path / "r")) == 0


def test_rotate_is_refused_for_placed_digits(tmp_path, capsys):
    assert cli("-d", "translate5k", "--rotate", "--limit", "8", *TRAIN, "-n", str(tmp_path / "r")) == 2
    assert "not available for translate5k" in capsys.readouterr().err


# ----- CIFAR-10 -----
@pytest.fixture
def cifar_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, 4))}
        (folder / name).write_bytes(pickle.dumps(batch))
    return tmp_path


def test_cifar10_reads_the_python_batches(cifar_root):
    data = load_dataset("cifar10", cifar_root)
    assert data.train_images.shape == (20, 3, 32, 32) and data.test_images.shape == (4, 3, 32, 32)
    assert len(data.mean) == 3 and data.classes[0] == "airplane"


def test_cifar10_trains_through_the_cli(cifar_root, tmp_path):
    assert cli("-d", "cifar10", "--data-root", str(cifar_root), "-m", "CNN2", "-l", "CNN2", "-p", "0", "--rotate",
               *TRAIN, "-n", str(tmp_path / "r")) == 0


def test_missing_cifar_says_where_to_put_it(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("offline")
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_dataset("cifar10", tmp_path)


# ----- the precomputed format -----
def test_precomputed_folder_prefix_is_read_as_is(tmp_path):
    write_precomputed(tmp_path / "set", prefix="pre_")
    data = load_dataset(str(tmp_path / "set" / "pre_"))
    assert data.train_images.shape == (6, 1, 16, 16) and data.train_labels.shape == (6,)
    assert data.mean == (30 / 255,) and data.std == (60 / 255,)


def test_precomputed_trains_through_the_cli(tmp_path):
    write_precomputed(tmp_path / "set")
    assert cli("-d", f"{tmp_path / 'set'}/", "-m", "FCN", "-l", "FCN", "-p", "0", *TRAIN, "-n", str(tmp_path / "r")) == 0


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.write_text("not,numbers\nimg.png,1\n"), "line 1 must hold the per-channel mean and std"),
    (lambda f: f.write_text("1,2\ntrain0.png\n"), "line 2: expected path and"),
    (lambda f: f.write_text("1,2\ntrain0.png,x\n"), "labels must be integers"),
    (lambda f: f.write_text("1,2\nmissing.png,1\n"), "cannot read image"),
])
def test_malformed_precomputed_csv_gives_one_line(tmp_path, damage, message):
    write_precomputed(tmp_path / "set")
    damage(tmp_path / "set" / "train.csv")
    with pytest.raises(DataError, match=message) as info:
        load_dataset(f"{tmp_path / 'set'}/")
    assert "\n" not in str(info.value)


def test_precomputed_images_of_different_sizes_are_refused(tmp_path):
    write_precomputed(tmp_path / "set")
    Image.new("L", (20, 20)).save(tmp_path / "set" / "images" / "train3.png")
    with pytest.raises(DataError, match="is \\(20, 20\\) pixels, the others \\(16, 16\\)"):
        load_dataset(f"{tmp_path / 'set'}/")


# ----- SVHN -----
def write_digit_struct(path, entries):
    """A digitStruct.mat (MATLAB v7.3 = HDF5) with object references, as SVHN ships it."""
    import h5py

    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        group = f.create_group("digitStruct")
        names, boxes = [], []
        for i, (name, digits) in enumerate(entries):
            names.append(refs.create_dataset(f"n{i}", data=np.array([[ord(c)] for c in name], dtype=np.uint16)).ref)
            box = refs.create_group(f"b{i}")
            for key in ("label", "left", "top", "width", "height"):
                values = [float(d[key]) for d in digits]
                if len(values) == 1:
                    box.create_dataset(key, data=np.array([[values[0]]]))
                else:
                    scalars = [refs.create_dataset(f"b{i}{key}{j}", data=np.array([[v]])).ref for j, v in enumerate(values)]
                    box.create_dataset(key, data=np.array(scalars, dtype=h5py.ref_dtype).reshape(-1, 1))
            boxes.append(box.ref)
        group.create_dataset("name", data=np.array(names, dtype=h5py.ref_dtype).reshape(-1, 1))
        group.create_dataset("bbox", data=np.array(boxes, dtype=h5py.ref_dtype).reshape(-1, 1))


@pytest.fixture
def svhn_archives(tmp_path):
    require("h5py")
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        entries = []
        with tarfile.open(tmp_path / f"{split}.tar.gz", "w:gz") as tar:
            for i in range(4):
                name = f"{i + 1}.png"
                digits = [{"label": 10 if j == 0 else j + i, "left": 10 + 12 * j, "top": 8, "width": 10,
                           "height": 20} for j in range(1 + i % 3)]
                entries.append((name, digits))
                buffer = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(buffer, "PNG")
                info = tarfile.TarInfo(f"{split}/{name}")
                info.size = len(buffer.getvalue())
                tar.addfile(info, io.BytesIO(buffer.getvalue()))
            write_digit_struct(tmp_path / "digitStruct.mat", entries)
            tar.add(tmp_path / "digitStruct.mat", arcname=f"{split}/digitStruct.mat")
    return tmp_path


def test_svhn_digit_struct_is_read(svhn_archives):
    with tarfile.open(svhn_archives / "train.tar.gz") as tar:
        tar.extract("train/digitStruct.mat", svhn_archives / "x", filter="data")
    entries = read_digit_struct(svhn_archives / "x" / "train" / "digitStruct.mat")
    assert [name for name, _ in entries] == ["1.png", "2.png", "3.png", "4.png"]
    assert [d["label"] for d in entries[2][1]] == [10, 3, 4] and entries[0][1][0]["left"] == 10


@pytest.mark.slow
def test_svhn_preparation_and_training(svhn_archives, tmp_path):
    out = tmp_path / "svhn"
    assert prepare_main(["svhn", str(svhn_archives), str(out)]) == 0
    data = load_dataset(f"{out}/")
    assert data.train_images.shape == (4, 3, 64, 64) and data.train_labels.shape == (4, 5)
    assert data.train_labels[2].tolist() == [0, 3, 4, 10, 10] and data.num_classes == 11
    model = STNetwork("SVHN-CNN", (3, 64, 64), 11, localization="SVHN-l", stn_placement=[0])
    assert model(data.train_images[:2]).shape == (2, 5, 11)
    for loc in ("SVHN-l", "SVHN-d", "SVHN-s"):
        assert cli("-d", f"{out}/", "-m", "SVHN-CNN", "-l", loc, "-p", "0", *TRAIN, "-b", "4",
                   "-n", str(tmp_path / loc)) == 0


def test_svhn_missing_archives(tmp_path, capsys):
    assert prepare_main(["svhn", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "train.tar.gz does not exist" in capsys.readouterr().err


# ----- PlanktonSet -----
@pytest.fixture
def plankton_source(tmp_path):
    rng = np.random.default_rng(0)
    for c, name in enumerate(("acantharia", "copepod", "diatom")):
        folder = tmp_path / "kaggle" / "train" / name
        folder.mkdir(parents=True)
        for i in range(5):
            image = np.full((30 + 10 * c, 50), 255, dtype=np.uint8)
            image[5:20, 10 + i:30 + i] = rng.integers(0, 120)
            Image.fromarray(image).save(folder / f"{i}.jpg")
    return tmp_path / "kaggle"


@pytest.mark.slow
def test_plankton_preparation_and_training(plankton_source, tmp_path):
    out = tmp_path / "data" / "plankton"
    assert prepare_main(["plankton", str(plankton_source), str(out), "--test-fraction", "0.2"]) == 0
    data = load_dataset(f"{out}/")
    assert data.train_images.shape == (12, 1, 95, 95) and data.test_images.shape == (3, 1, 95, 95)
    assert data.kind == "plankton" and data.padding_mode == "border"
    assert data.train_images[0, 0, 0, 0] == 0  # inverted: the white background became black
    for loc in ("plankton-l", "plankton2", "plankton4"):
        assert cli("-d", f"{out}/", "-m", "plankton", "-l", loc, "-p", "0", *TRAIN, "-n", str(tmp_path / loc)) == 0
    model = STNetwork("plankton", (1, 95, 95), 3, localization="plankton-l", stn_placement=[0])
    rows = accuracy_under_rotations(model, data.test_images, data.test_labels)
    assert len(rows) == 17 and rows[0]["angle"] == -180 and rows[8]["angle"] == 0
    with torch.no_grad():  # the upright row, counted by hand
        upright = (model.eval()(data.test_images).argmax(1) == data.test_labels).float().mean().item()
    assert rows[8]["accuracy"] == pytest.approx(upright)


def test_plankton_augmentation_keeps_its_true_transformation(plankton_source, tmp_path):
    from stnlib.data.transforms import RandomAffine

    out = tmp_path / "data" / "plankton"
    prepare_main(["plankton", str(plankton_source), str(out)])
    data = load_dataset(f"{out}/")
    batch = RandomAffine()(Batch(data.train_images[:6], data.train_labels[:6], torch.arange(6)),
                           torch.Generator().manual_seed(0))
    assert batch.images.shape == (6, 1, 95, 95) and batch.true.angle.abs().max() <= 180
    assert (batch.true.scale >= 1 / 1.3 - 1e-6).all() and (batch.true.scale <= 1.3 + 1e-6).all()
    assert batch.true.shift.abs().max() <= 10 * 2 / 95 + 1e-6


def test_plankton_source_without_classes(tmp_path, capsys):
    (tmp_path / "train").mkdir()
    assert prepare_main(["plankton", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "holds no class folders" in capsys.readouterr().err
