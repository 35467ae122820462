"""Loaders for local dataset files: MNIST-style IDX files and CIFAR-10 python batches.

numpy only, no network. Every problem with a user file is reported as a `DataFileError`
whose message names the file (or folder) and what is wrong with it.

CIFAR-10 batches are pickles, so they are read with a restricted unpickler that only
resolves the few globals numpy arrays need; anything else is refused, never executed.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DataFileError",
    "IDX_FILES",
    "CIFAR10_TRAIN_BATCHES",
    "CIFAR10_TEST_BATCH",
    "load_idx",
    "load_cifar10",
    "write_idx",
    "write_cifar_batch",
]

NUM_CLASSES = 10

IDX_KINDS = ("mnist", "fashion-mnist")
# role -> canonical file name (the mirrors' dotted variants are derived from it)
IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_UINT8 = 0x08
_IDX_IMAGE_SHAPE = (28, 28)

CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_SUBDIR = "cifar-10-batches-py"
_CIFAR_COLUMNS = 3 * 32 * 32

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class DataFileError(ValueError):
    """A dataset file is missing, malformed or unsafe."""


# --------------------------------------------------------------------------- IDX


def _idx_candidates(name: str) -> list[str]:
    """File names accepted for one IDX file, in order of preference."""
    dotted = name.replace("-idx", ".idx")  # train-images-idx3-ubyte -> train-images.idx3-ubyte
    names = [name, name + ".gz"]
    if dotted != name:
        names += [dotted, dotted + ".gz"]
    return names


def _read_bytes(path: Path) -> bytes:
    """Read a file, transparently gunzipping a `.gz` one."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFileError(f"{path}: cannot read file ({exc})") from exc


def _parse_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Parse and validate one uint8 IDX file with `expected_ndim` dimensions."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataFileError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise DataFileError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()} (must start with two zero bytes)"
        )
    if raw[2] != _IDX_UINT8:
        raise DataFileError(
            f"{path}: unsupported IDX data type code 0x{raw[2]:02x} (expected 0x08 = uint8)"
        )
    ndim = raw[3]
    if ndim != expected_ndim:
        raise DataFileError(f"{path}: IDX file has {ndim} dimensions, expected {expected_ndim}")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataFileError(f"{path}: truncated IDX header ({len(raw)} of {header_len} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(raw) - header_len
    if actual < expected:
        raise DataFileError(
            f"{path}: truncated data: header declares shape {shape} = {expected} bytes, "
            f"file holds {actual}"
        )
    if actual > expected:
        raise DataFileError(
            f"{path}: {actual - expected} unexpected trailing bytes after shape {shape}"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=expected, offset=header_len).reshape(shape)


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """Return labels as int64, raising if any lies outside 0..9."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        bad = labels[(labels < 0) | (labels >= NUM_CLASSES)]
        raise DataFileError(
            f"{where}: labels must lie in 0..{NUM_CLASSES - 1}, found {int(bad[0])}"
            f" ({bad.size} out of range)"
        )
    return labels.astype(np.int64)


def _load_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = _parse_idx(images_path, expected_ndim=3)
    if images.shape[1:] != _IDX_IMAGE_SHAPE:
        raise DataFileError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28"
        )
    labels = _parse_idx(labels_path, expected_ndim=1)
    if labels.shape[0] != images.shape[0]:
        raise DataFileError(
            f"{labels_path}: {labels.shape[0]} labels but {images_path.name} "
            f"has {images.shape[0]} images"
        )
    y = _check_labels(labels, str(labels_path))
    x = images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)
    return x, y


def load_idx(path: Path | str, kind: str) -> Arrays:
    """Load MNIST or Fashion-MNIST from the four IDX files in folder `path`.

    Each file may be plain or gzipped (`.gz`), under its canonical name or the dotted
    mirror variant (`train-images.idx3-ubyte`). Returns (x_train, y_train, x_test, y_test)
    with x float32 of shape (N, 784) in [0, 1] and y int64.
    """
    if kind not in IDX_KINDS:
        raise ValueError(f"unknown IDX dataset kind {kind!r}; expected one of {IDX_KINDS}")
    folder = Path(path)
    if not folder.is_dir():
        raise DataFileError(f"{kind} data folder {folder} does not exist or is not a folder")

    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, name in IDX_FILES.items():
        candidates = _idx_candidates(name)
        hit = next((folder / c for c in candidates if (folder / c).is_file()), None)
        if hit is None:
            missing.append(" or ".join(candidates))
        else:
            found[role] = hit
    if missing:
        raise DataFileError(
            f"{kind} files missing in {folder}: looked for " + "; ".join(missing)
        )

    x_train, y_train = _load_idx_pair(found["train_images"], found["train_labels"])
    x_test, y_test = _load_idx_pair(found["test_images"], found["test_labels"])
    return x_train, y_train, x_test, y_test


def write_idx(path: Path | str, array: np.ndarray) -> None:
    """Write a 1-D or 3-D uint8 array as an IDX file (gzipped if `path` ends in .gz)."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise ValueError(f"write_idx needs a uint8 array, got {arr.dtype}")
    if arr.ndim not in (1, 3):
        raise ValueError(f"write_idx needs a 1-D or 3-D array, got {arr.ndim}-D")
    header = bytes([0, 0, _IDX_UINT8, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(arr).tobytes()
    path = Path(path)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


# ----------------------------------------------------------------------- CIFAR-10

# (module, name) pairs a pickled numpy array may legitimately reference.
_SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),  # numpy's pickle protocol 5 path
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # numpy's latin-1 encoding of array bytes under Python 3
        ("codecs", "encode"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals numpy arrays need."""

    def __init__(self, file: Any, source: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise DataFileError(
            f"{self._source}: refuses to unpickle {module}.{name} "
            "(only numpy arrays are allowed in CIFAR-10 batches)"
        )


def _safe_unpickle(path: Path) -> Any:
    try:
        with path.open("rb") as fh:
            return _RestrictedUnpickler(fh, path).load()
    except DataFileError:
        raise
    except Exception as exc:  # any malformed pickle: UnpicklingError, EOFError, ...
        raise DataFileError(f"{path}: not a readable CIFAR-10 batch ({exc!r})") from exc


def _get(batch: dict[Any, Any], key: str) -> Any:
    """Look up a batch key stored as bytes (Python 2 pickles) or str."""
    if key.encode() in batch:
        return batch[key.encode()]
    return batch.get(key)


def _load_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _safe_unpickle(path)
    if not isinstance(batch, dict):
        raise DataFileError(f"{path}: expected a dict, got {type(batch).__name__}")
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if data is None or labels is None:
        raise DataFileError(f"{path}: batch lacks the b'data' or b'labels' key")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise DataFileError(f"{path}: b'data' must be a uint8 numpy array")
    if data.ndim != 2 or data.shape[1] != _CIFAR_COLUMNS:
        raise DataFileError(
            f"{path}: b'data' has shape {data.shape}, expected (N, {_CIFAR_COLUMNS})"
        )
    try:
        y = np.asarray(labels)
    except Exception as exc:
        raise DataFileError(f"{path}: b'labels' is not a list of ints ({exc})") from exc
    if y.ndim != 1 or (y.size and y.dtype.kind not in "iu"):
        raise DataFileError(f"{path}: b'labels' must be a flat list of ints")
    if y.shape[0] != data.shape[0]:
        raise DataFileError(f"{path}: {y.shape[0]} labels but {data.shape[0]} images")
    y = _check_labels(y, str(path))
    return data.astype(np.float32) / np.float32(255.0), y


def load_cifar10(path: Path | str) -> Arrays:
    """Load CIFAR-10 (python version) from `path` or `path/cifar-10-batches-py/`.

    Requires all of data_batch_1..5 and test_batch. Returns (x_train, y_train, x_test,
    y_test) with x float32 of shape (N, 3072) in [0, 1] and y int64.
    """
    root = Path(path)
    names = (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)
    folder = root
    sub = root / CIFAR10_SUBDIR
    if not any((root / n).is_file() for n in names) and sub.is_dir():
        folder = sub
    if not folder.is_dir():
        raise DataFileError(f"cifar10 data folder {root} does not exist or is not a folder")
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        where = f"{root} (or {sub})" if folder == root else str(folder)
        raise DataFileError(f"cifar10 files missing in {where}: " + ", ".join(missing))

    train = [_load_cifar_batch(folder / n) for n in CIFAR10_TRAIN_BATCHES]
    x_test, y_test = _load_cifar_batch(folder / CIFAR10_TEST_BATCH)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test


def write_cifar_batch(path: Path | str, data: np.ndarray, labels: list[int] | np.ndarray) -> None:
    """Write a CIFAR-10 style batch (dict with b'data' and b'labels') as a pickle."""
    batch = {
        b"batch_label": Path(path).name.encode(),
        b"labels": [int(v) for v in np.asarray(labels).ravel()],
        b"data": np.ascontiguousarray(data, dtype=np.uint8),
    }
    with Path(path).open("wb") as fh:
        pickle.dump(batch, fh, protocol=2)
