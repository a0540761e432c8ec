"""Turn the official SVHN and PlanktonSet downloads into precomputed datasets.

    python -m stnlib.prepare svhn ARCHIVES OUT [--extra]
        ARCHIVES holds SVHN "format 1" train.tar.gz and test.tar.gz (and extra.tar.gz), each with
        PNGs and digitStruct.mat (HDF5). Writes 64x64 crops around each house number (the union of
        its digit boxes, grown by 30%) to OUT/images/, and OUT/train.csv, OUT/test.csv with five
        labels per image (digits 0-9, 10 = no digit). Train with -d OUT/.
    python -m stnlib.prepare plankton SOURCE OUT [--test-fraction 0.1]
        SOURCE is the Kaggle PlanktonSet layout train/<class>/<image>.jpg. Writes 95x95 images,
        inverted and padded to a square, to OUT/images/ and a stratified train/test split. Use an
        OUT path with a folder named plankton (e.g. data/plankton) to get the PlanktonSet
        augmentation; train with -d data/plankton/.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import shutil
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError, StnlibError
from .files import new_file_mode
from .runs import save_text

SVHN_SIZE, SVHN_DIGITS, SVHN_NONE, SVHN_MARGIN = 64, 5, 10, 0.3
PLANKTON_SIZE = 95


def read_digit_struct(path: Path) -> list[tuple[str, list[dict]]]:
    """``[(file name, [{"label", "left", "top", "width", "height"} per digit])]`` from digitStruct.mat."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise DataError(f"{path} is not an HDF5 digitStruct.mat") from None
    with handle:
        root = handle["digitStruct"]

        def values(group, key):
            item = group[key]
            if item.shape[0] == 1:
                return [float(np.asarray(item).ravel()[0])]
            return [float(np.asarray(handle[ref]).ravel()[0]) for ref in np.asarray(item).ravel()]

        entries = []
        for name_ref, box_ref in zip(root["name"][:, 0], root["bbox"][:, 0]):
            name = "".join(chr(c) for c in np.asarray(handle[name_ref]).ravel())
            box = handle[box_ref]
            columns = {k: values(box, k) for k in ("label", "left", "top", "width", "height")}
            entries.append((name, [dict(zip(columns, row)) for row in zip(*columns.values())]))
    return entries


def svhn_crop(image, digits: list[dict]):
    """The union of the digit boxes grown by 30%, resized to 64x64 (a PIL image)."""
    from PIL import Image

    left = min(d["left"] for d in digits)
    top = min(d["top"] for d in digits)
    right = max(d["left"] + d["width"] for d in digits)
    bottom = max(d["top"] + d["height"] for d in digits)
    grow_x, grow_y = (right - left) * SVHN_MARGIN / 2, (bottom - top) * SVHN_MARGIN / 2
    box = (max(0, left - grow_x), max(0, top - grow_y), min(image.width, right + grow_x),
           min(image.height, bottom + grow_y))
    return image.crop(tuple(int(round(v)) for v in box)).resize((SVHN_SIZE, SVHN_SIZE), Image.BILINEAR)


def svhn_labels(digits: list[dict]) -> list[int]:
    labels = [int(d["label"]) % 10 for d in digits]  # SVHN writes the digit 0 as 10
    return labels + [SVHN_NONE] * (SVHN_DIGITS - len(labels))


def prepare_svhn(archives: Path, out: Path, splits=("train", "test")) -> dict[str, int]:
    rows: dict[str, list] = {"train": [], "test": []}
    for split in splits:
        archive = archives / f"{split}.tar.gz"
        if not archive.is_file():
            raise DataError(f"{archive} does not exist; download SVHN format 1 (train.tar.gz, test.tar.gz) there")
        target = "test" if split == "test" else "train"
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(archive) as tar, tempfile.TemporaryDirectory() as tmp:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                if "digitStruct.mat" not in members:
                    raise DataError(f"{archive} holds no digitStruct.mat")
                (Path(tmp) / "digitStruct.mat").write_bytes(tar.extractfile(members["digitStruct.mat"]).read())
                for name, digits in read_digit_struct(Path(tmp) / "digitStruct.mat"):
                    if not digits or len(digits) > SVHN_DIGITS or name not in members:
                        continue
                    image = read_image(io.BytesIO(tar.extractfile(members[name]).read()), f"{archive}: {name}")
                    relative = f"{split}/{Path(name).stem}.png"
                    svhn_crop(image.convert("RGB"), digits).save(out / "images" / relative)
                    rows[target].append([relative, *svhn_labels(digits)])
        except (tarfile.TarError, EOFError, zlib.error) as error:
            raise DataError(f"{archive} is not a readable .tar.gz archive ({type(error).__name__}); download "
                            f"it again") from None
        except OSError as error:  # gzip's BadGzipFile and truncated streams
            if isinstance(error, StnlibError):
                raise
            raise DataError(f"{archive} is not a readable .tar.gz archive ({error}); download it again") from None
    write_csvs(out, rows, channels=3)
    return {k: len(v) for k, v in rows.items()}


def read_image(source, name):
    """The PIL image in ``source`` (a path or a file object), fully decoded; a ``DataError`` naming
    ``name`` when it is not an image PIL can read, or too large to be one."""
    from PIL import Image

    try:
        image = Image.open(source)
        image.load()
        return image
    except Image.DecompressionBombError:
        raise DataError(f"{name} is too large to be a dataset image (over {2 * Image.MAX_IMAGE_PIXELS:,} "
                        f"pixels)") from None
    except (OSError, ValueError, SyntaxError) as error:  # PIL's UnidentifiedImageError is an OSError
        raise DataError(f"cannot read image {name} ({type(error).__name__})") from None


def plankton_image(path: Path):
    """Invert, pad to a square with the (new) black background, resize to 95x95."""
    from PIL import Image, ImageOps

    image = ImageOps.invert(read_image(path, path).convert("L"))
    side = max(image.size)
    square = Image.new("L", (side, side), 0)
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return square.resize((PLANKTON_SIZE, PLANKTON_SIZE), Image.LANCZOS)


def prepare_plankton(source: Path, out: Path, test_fraction: float = 0.1, seed: int = 0) -> dict[str, int]:
    train_dir = source / "train"
    classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir()) if train_dir.is_dir() else []
    if not classes:
        raise DataError(f"{train_dir} holds no class folders; expected the Kaggle layout train/<class>/<image>.jpg")
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"train": [], "test": []}
    for label, name in enumerate(classes):
        files = sorted(p for p in (train_dir / name).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        test_count = max(1, int(round(len(files) * test_fraction))) if len(files) > 1 else 0
        chosen = set(rng.permutation(len(files))[:test_count].tolist())
        (out / "images" / name).mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(files):
            relative = f"{name}/{path.stem}.png"
            plankton_image(path).save(out / "images" / relative)
            rows["test" if i in chosen else "train"].append([relative, label])
    write_csvs(out, rows, channels=1)
    save_text(out / "classes.txt", "\n".join(classes) + "\n")
    return {k: len(v) for k, v in rows.items()}


def write_csvs(out: Path, rows: dict[str, list], channels: int) -> None:
    """``train.csv`` and ``test.csv``: a first row of per-channel mean and std (0-255) of the training images."""
    from PIL import Image

    pixels = np.stack([np.asarray(Image.open(out / "images" / r[0]).convert("L" if channels == 1 else "RGB"),
                                  dtype=np.float64).reshape(-1, channels) for r in rows["train"]])
    stats = [*pixels.reshape(-1, channels).mean(0), *pixels.reshape(-1, channels).std(0)]
    for split, table in rows.items():
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow([f"{v:.4f}" for v in stats])
        writer.writerows(table)
        save_text(out / f"{split}.csv", text.getvalue())


@contextlib.contextmanager
def new_folder(out: Path):
    """A staging folder beside ``out`` to prepare a dataset in, renamed to ``out`` when the body
    finishes and removed when it fails, so that ``out`` is either complete or absent. ``out`` must not
    hold anything yet: a dataset already there is never overwritten."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} already exists; choose a new folder for the prepared dataset, or remove it first")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as error:
        raise DataError(f"cannot create {out}: {error.strerror or error}") from None
    staging.chmod(new_file_mode() | 0o111)  # a folder's mode under the user's umask, not mkdtemp's 0700
    try:
        yield staging
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stnlib.prepare", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="dataset", required=True)
    svhn = commands.add_parser("svhn", help="SVHN format 1 archives -> 64x64 multi-digit crops")
    svhn.add_argument("archives", type=Path)
    svhn.add_argument("out", type=Path)
    svhn.add_argument("--extra", action="store_true", help="also add extra.tar.gz to the training set")
    plankton = commands.add_parser("plankton", help="Kaggle PlanktonSet folder -> 95x95 images")
    plankton.add_argument("source", type=Path)
    plankton.add_argument("out", type=Path)
    plankton.add_argument("--test-fraction", type=float, default=0.1)
    args = parser.parse_args(argv)
    try:
        with new_folder(args.out) as staging:
            if args.dataset == "svhn":
                counts = prepare_svhn(args.archives, staging, ("train", "test", "extra") if args.extra else
                                      ("train", "test"))
            else:
                counts = prepare_plankton(args.source, staging, args.test_fraction)
    except StnlibError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {counts['train']} training and {counts['test']} test images to {args.out}; "
          f"train with -d {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
