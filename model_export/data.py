"""Data sets for training: scikit-learn's digits, an image folder, or MNIST-format IDX files."""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from service.classifier.preprocess import prepare_image
from service.codecs.images import decode_grayscale
from service.errors import ServiceError
from service.metadata import to_unit

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class DataError(Exception):
    """Bad training data; the message names the file and the problem."""


@dataclass(frozen=True)
class Dataset:
    """Raw images (N, H, W) in ``value_range``, integer labels and the class names."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    value_range: tuple[float, float]


@dataclass(frozen=True)
class Split:
    """One part of a data set: images scaled to [0, 1], shape (N, 1, H, W), and labels."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split
    #: Mean and std of the training images in [0, 1] scale: the model's normalisation.
    mean: float
    std: float

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train.y), "val": len(self.val.y), "test": len(self.test.y)}


def load(spec: str, image_size: int) -> Dataset:
    """Load ``digits``, ``folder:PATH`` or ``idx:PATH``; raise DataError on bad data."""
    kind, _, path = spec.partition(":")
    if kind == "digits" and not path:
        dataset = _load_digits()
    elif kind == "folder" and path:
        dataset = _load_folder(Path(path).expanduser(), image_size)
    elif kind == "idx" and path:
        dataset = _load_idx(Path(path).expanduser())
    else:
        raise DataError(f"--data {spec!r}: expected 'digits', 'folder:PATH' or 'idx:PATH'")
    counts = np.bincount(dataset.labels, minlength=len(dataset.class_names))
    if len(dataset.class_names) < 2:
        raise DataError(
            f"{spec}: found {len(dataset.class_names)} class(es); at least two are needed"
        )
    if counts.min() < 3:
        name = dataset.class_names[int(counts.argmin())]
        raise DataError(
            f"{spec}: class {name!r} has {counts.min()} image(s); each class needs at least 3 "
            "(one each for train, validation and test)"
        )
    return dataset


def split(
    dataset: Dataset, seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> Splits:
    """Deterministic stratified train/validation/test split, scaled to [0, 1]."""
    x = to_unit(dataset.images, dataset.value_range)[:, None, :, :]
    y = dataset.labels.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest,
        y_rest,
        test_size=val_fraction / (1 - test_fraction),
        stratify=y_rest,
        random_state=seed,
    )
    return Splits(
        train=Split(x_train, y_train),
        val=Split(x_val, y_val),
        test=Split(x_test, y_test),
        mean=float(x_train.mean()),
        std=float(x_train.std()),
    )


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return Dataset(
        name="sklearn-digits",
        images=bunch.images.astype(np.float32),
        labels=bunch.target.astype(np.int64),
        class_names=tuple(str(t) for t in bunch.target_names),
        value_range=(0.0, 16.0),
    )


def _load_folder(root: Path, image_size: int) -> Dataset:
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    class_dirs = sorted(p for p in _visible(root) if p.is_dir())
    images: list[np.ndarray] = []
    labels: list[int] = []
    for index, class_dir in enumerate(class_dirs):
        files = sorted(p for p in _visible(class_dir) if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(
                f"{class_dir}: class folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        for file in files:
            try:
                gray = decode_grayscale(file.read_bytes(), name=str(file))
                # The service's own preparation of uploads: the model sees the same images.
                size = (image_size, image_size)
                images.append(prepare_image(gray, size, (0.0, 255.0), invert=None))
            except ServiceError as exc:
                raise DataError(exc.message) from None
            except OSError as exc:
                raise DataError(f"{file}: cannot read ({exc.strerror})") from None
            labels.append(index)
    if len(class_dirs) < 2:
        raise DataError(f"{root}: found {len(class_dirs)} class folder(s); at least two are needed")
    return Dataset(
        name=f"folder:{root.name}",
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(p.name for p in class_dirs),
        value_range=(0.0, 255.0),
    )


def _visible(folder: Path) -> list[Path]:
    """The entries of ``folder`` but hidden ones (.ipynb_checkpoints, .DS_Store, ...)."""
    return [p for p in folder.iterdir() if not p.name.startswith(".")]


def _load_idx(root: Path) -> Dataset:
    """Pool every ``*images-idx3-ubyte[.gz]`` file in ``root`` with its ``*labels-idx1-ubyte``."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    image_files = sorted(p for p in root.glob("*images*idx3-ubyte*") if p.name[0] != ".")
    if not image_files:
        raise DataError(f"{root}: no '*images-idx3-ubyte[.gz]' file")
    images, labels = [], []
    for image_file in image_files:
        label_file = image_file.with_name(
            image_file.name.replace("images", "labels").replace("idx3", "idx1")
        )
        if not label_file.exists():
            raise DataError(f"{image_file}: its labels file {label_file.name} is missing")
        x = _read_idx(image_file, magic=0x00000803)
        y = _read_idx(label_file, magic=0x00000801)
        if len(x) != len(y):
            raise DataError(f"{label_file}: {len(y)} labels for {len(x)} images")
        images.append(x.astype(np.float32))
        labels.append(y.astype(np.int64))
    y_all = np.concatenate(labels)
    classes = np.unique(y_all)
    return Dataset(
        name=f"idx:{root.name}",
        images=np.concatenate(images),
        labels=np.searchsorted(classes, y_all),
        class_names=tuple(str(c) for c in classes),
        value_range=(0.0, 255.0),
    )


def _read_idx(path: Path, magic: int) -> np.ndarray:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc})") from None
    if len(raw) < 4 or struct.unpack(">I", raw[:4])[0] != magic:
        found = raw[:4].hex() if len(raw) >= 4 else "nothing"
        raise DataError(f"{path}: wrong IDX magic number 0x{found}, expected 0x{magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(f"{path}: holds {len(raw) - header} bytes of data, header says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
