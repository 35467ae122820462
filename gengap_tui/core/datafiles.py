"""Loaders for local dataset files: MNIST-style IDX files, CIFAR-10 and CIFAR-100 python
batches, and scikit-learn's bundled 8x8 digits (`.npz` arrays: `npzfile.py`).

numpy only, no network. Every problem with a user file is reported as a `DataFileError`
whose message names the file (or folder) and what is wrong with it; missing files name every
file looked for and how to point `data.path` at them.

The `*_images` loaders return images as images: uint8 `(N, C, H, W)` (the lab stores them so on
the device and normalizes them per channel as batches are taken: `core/images.py`);
`load_idx` / `load_cifar10` keep their flat float32 `(N, D)` form in [0, 1].

CIFAR batches are pickles, so they are read with a restricted unpickler that only
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
    "load_idx_images",
    "load_cifar10_images",
    "load_cifar100_images",
    "load_digits_images",
    "write_idx",
    "write_cifar_batch",
    "write_cifar100",
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
CIFAR100_FILES = ("train", "test")
CIFAR100_SUBDIR = "cifar-100-python"
_CIFAR_COLUMNS = 3 * 32 * 32
DIGITS_TEST = 297  # digits has no test split of its own: a fixed 297 of its 1,797 images
DIGITS_SPLIT_SEED = 20

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class DataFileError(ValueError):
    """A dataset file is missing, malformed or unsafe."""


def how_to_point(kind: str, what: str = "the folder that holds them") -> str:
    """The end of a missing-files message: how to tell the lab where the files are."""
    return (f"; set data.path to {what} (`--set data.path=PATH`, or `path = \"PATH\"` under [data] "
            f"in the preset; data.dataset = {kind!r})")


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


def _check_labels(labels: np.ndarray, where: str, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Return labels as int64, raising if any lies outside 0..num_classes - 1."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise DataFileError(
            f"{where}: labels must lie in 0..{num_classes - 1}, found {int(bad[0])}"
            f" ({bad.size} out of range)"
        )
    return labels.astype(np.int64)


def _load_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, 28, 28), int64 labels)."""
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
    return images.copy(), y  # (a writable copy: frombuffer views the file's bytes read-only)


def _flat01(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1).astype(np.float32) / np.float32(255.0)


def load_idx(path: Path | str, kind: str) -> Arrays:
    """Load MNIST or Fashion-MNIST from the four IDX files in folder `path`.

    Each file may be plain or gzipped (`.gz`), under its canonical name or the dotted
    mirror variant (`train-images.idx3-ubyte`). Returns (x_train, y_train, x_test, y_test)
    with x float32 of shape (N, 784) in [0, 1] and y int64.
    """
    x_train, y_train, x_test, y_test = load_idx_images(path, kind)
    return _flat01(x_train), y_train, _flat01(x_test), y_test


def load_idx_images(path: Path | str, kind: str) -> Arrays:
    """`load_idx`, the images as uint8 (N, 1, 28, 28)."""
    if kind not in IDX_KINDS:
        raise ValueError(f"unknown IDX dataset kind {kind!r}; expected one of {IDX_KINDS}")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataFileError(f"{kind} data folder {folder} does not exist or is not a folder"
                            + how_to_point(kind, "the folder of its four IDX files"))

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
            + how_to_point(kind, "the folder of its four IDX files")
        )

    x_train, y_train = _load_idx_pair(found["train_images"], found["train_labels"])
    x_test, y_test = _load_idx_pair(found["test_images"], found["test_labels"])
    return x_train[:, None], y_train, x_test[:, None], y_test


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


def _safe_unpickle(path: Path, what: str = "CIFAR-10 batch") -> Any:
    try:
        with path.open("rb") as fh:
            return _RestrictedUnpickler(fh, path).load()
    except DataFileError:
        raise
    except Exception as exc:  # any malformed pickle: UnpicklingError, EOFError, ...
        raise DataFileError(f"{path}: not a readable {what} ({exc!r})") from exc


def _get(batch: dict[Any, Any], key: str) -> Any:
    """Look up a batch key stored as bytes (Python 2 pickles) or str."""
    if key.encode() in batch:
        return batch[key.encode()]
    return batch.get(key)


def _load_cifar_batch(path: Path, label_key: str = "labels", num_classes: int = NUM_CLASSES,
                      what: str = "CIFAR-10 batch") -> tuple[np.ndarray, np.ndarray]:
    """(uint8 rows (N, 3072) in CIFAR's channel-major order, int64 labels) of one pickled batch."""
    batch = _safe_unpickle(path, what)
    if not isinstance(batch, dict):
        raise DataFileError(f"{path}: expected a dict, got {type(batch).__name__}")
    data, labels = _get(batch, "data"), _get(batch, label_key)
    if data is None or labels is None:
        raise DataFileError(f"{path}: batch lacks the b'data' or b'{label_key}' key")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise DataFileError(f"{path}: b'data' must be a uint8 numpy array")
    if data.ndim != 2 or data.shape[1] != _CIFAR_COLUMNS:
        raise DataFileError(
            f"{path}: b'data' has shape {data.shape}, expected (N, {_CIFAR_COLUMNS})"
        )
    try:
        y = np.asarray(labels)
    except Exception as exc:
        raise DataFileError(f"{path}: b'{label_key}' is not a list of ints ({exc})") from exc
    if y.ndim != 1 or (y.size and y.dtype.kind not in "iu"):
        raise DataFileError(f"{path}: b'{label_key}' must be a flat list of ints")
    if y.shape[0] != data.shape[0]:
        raise DataFileError(f"{path}: {y.shape[0]} labels but {data.shape[0]} images")
    return data, _check_labels(y, str(path), num_classes)


def _cifar_folder(root: Path, names: tuple[str, ...], subdir: str, kind: str) -> Path:
    """The folder holding all of `names`: `root` or `root/subdir`; else a message naming the files."""
    hint = how_to_point(kind, f"the {subdir}/ folder (or the one that holds it)")
    folder = root
    sub = root / subdir
    if not any((root / n).is_file() for n in names) and sub.is_dir():
        folder = sub
    if not folder.is_dir():
        raise DataFileError(f"{kind} data folder {root} does not exist or is not a folder (looked for "
                            f"{', '.join(names)} in it or in {subdir}/ under it)" + hint)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        where = f"{root} (or {sub})" if folder == root else str(folder)
        raise DataFileError(f"{kind} files missing in {where}: " + ", ".join(missing) + hint)
    return folder


def _images32(rows: np.ndarray) -> np.ndarray:
    return rows.reshape(rows.shape[0], 3, 32, 32)


def load_cifar10(path: Path | str) -> Arrays:
    """Load CIFAR-10 (python version) from `path` or `path/cifar-10-batches-py/`.

    Requires all of data_batch_1..5 and test_batch. Returns (x_train, y_train, x_test,
    y_test) with x float32 of shape (N, 3072) in [0, 1] and y int64.
    """
    x_train, y_train, x_test, y_test = load_cifar10_images(path)
    return _flat01(x_train), y_train, _flat01(x_test), y_test


def load_cifar10_images(path: Path | str) -> Arrays:
    """`load_cifar10`, the images as uint8 (N, 3, 32, 32)."""
    names = (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)
    folder = _cifar_folder(Path(path).expanduser(), names, CIFAR10_SUBDIR, "cifar10")
    train = [_load_cifar_batch(folder / n) for n in CIFAR10_TRAIN_BATCHES]
    x_test, y_test = _load_cifar_batch(folder / CIFAR10_TEST_BATCH)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return _images32(x_train), y_train, _images32(x_test), y_test


def load_cifar100_images(path: Path | str) -> Arrays:
    """CIFAR-100 (python version) from `path` or `path/cifar-100-python/`: the files `train` and
    `test`, with their 100 fine labels (`b'fine_labels'`). Images uint8 (N, 3, 32, 32)."""
    folder = _cifar_folder(Path(path).expanduser(), CIFAR100_FILES, CIFAR100_SUBDIR, "cifar100")
    (x_train, y_train), (x_test, y_test) = (
        _load_cifar_batch(folder / n, "fine_labels", 100, "CIFAR-100 file") for n in CIFAR100_FILES)
    return _images32(x_train), y_train, _images32(x_test), y_test


def write_cifar_batch(path: Path | str, data: np.ndarray, labels: list[int] | np.ndarray,
                      label_key: str = "labels") -> None:
    """Write a CIFAR-10 style batch (dict with b'data' and b'labels') as a pickle."""
    batch = {
        b"batch_label": Path(path).name.encode(),
        label_key.encode(): [int(v) for v in np.asarray(labels).ravel()],
        b"data": np.ascontiguousarray(data, dtype=np.uint8),
    }
    with Path(path).open("wb") as fh:
        pickle.dump(batch, fh, protocol=2)


def write_cifar100(folder: Path | str, name: str, data: np.ndarray, fine: list[int] | np.ndarray) -> None:
    """Write a CIFAR-100 style file (`train` or `test`: b'data', b'fine_labels', b'coarse_labels')."""
    fine = [int(v) for v in np.asarray(fine).ravel()]
    batch = {b"filenames": [b"x.png"] * len(fine), b"fine_labels": fine,
             b"coarse_labels": [v // 5 for v in fine], b"data": np.ascontiguousarray(data, dtype=np.uint8)}
    with (Path(folder) / name).open("wb") as fh:
        pickle.dump(batch, fh, protocol=2)


# ------------------------------------------------------------------------- digits


def load_digits_images() -> Arrays:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images inside its wheel: no download),
    as uint8 (N, 1, 8, 8) with the original 0..16 grey levels; a fixed 297 of them (a permutation
    seeded with DIGITS_SPLIT_SEED) are the test split, the other 1,500 the training file."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataFileError("data.dataset = 'digits' needs scikit-learn (its 8x8 digits ship inside it): "
                            "pip install 'gengap-tui[digits]'") from None
    d = load_digits()
    x = np.asarray(d.images, dtype=np.float64).round().astype(np.uint8)[:, None]  # (1797, 1, 8, 8), 0..16
    y = np.asarray(d.target, dtype=np.int64)
    perm = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(y))
    tr, te = perm[:-DIGITS_TEST], perm[-DIGITS_TEST:]
    return x[tr], y[tr], x[te], y[te]
