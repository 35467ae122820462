"""`data.dataset = "npz"`: bring your own arrays in one `.npz` file (`data.path` is the file).

Keys: `x_train, y_train, x_test, y_test`, and optionally `x_val, y_val` (both or neither). Inputs
are images — `(N, H, W)` (one channel), `(N, C, H, W)` or `(N, H, W, C)` — or feature vectors
`(N, D)`; uint8 or float. Labels are 1-D integers 0..K-1 (K = the largest label + 1, at least 2).

Layout: a 4-D array is channels-last (NHWC) when its last axis is 1 or 3 and its second is not,
channels-first (NCHW) otherwise; images are returned as (N, C, H, W). uint8 images stay uint8
(stored so on the device); float images whose values are all k/255 in [0, 1] become the uint8
k (lossless, a quarter of the memory); other float images stay float32, as given.

Every array is checked, and every problem is a `DataFileError` naming the file, the array and its
shape (or dtype) and what was expected: the session turns it into exit 2.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .datafiles import DataFileError, how_to_point

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("x_val", "y_val")
SHAPES = "(N, H, W), (N, C, H, W), (N, H, W, C) or (N, D)"
MAX_CLASSES = 100_000


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        what = "a folder, not a .npz file" if path.is_dir() else "no such file"
        raise DataFileError(f"npz file {path}: {what}; looked for the arrays {', '.join(REQUIRED)} "
                            f"(optional {', '.join(OPTIONAL)}) in it" + how_to_point("npz", "the .npz file"))
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise DataFileError(f"{path}: a single .npy array, not a .npz archive of named arrays "
                                    f"({', '.join(REQUIRED)}); write it with numpy.savez")
            out = {}
            for k in z.files:
                try:
                    out[k] = z[k]
                except ValueError as exc:  # object arrays need pickle, which is refused
                    raise DataFileError(f"{path}: array {k!r} cannot be read without pickle ({exc}); "
                                        f"store plain numeric arrays") from None
            return out
    except DataFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"{path}: not a readable .npz file ({exc})") from None


def _images(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """One input array, checked: (N, C, H, W) images or (N, D) features, uint8 or float32."""
    if x.dtype.kind not in "uif" or x.dtype.kind in "iu" and x.dtype != np.uint8:
        if x.dtype.kind in "iu" and x.size and x.min() >= 0 and x.max() <= 255:
            x = x.astype(np.uint8)  # e.g. int64 pixels 0..255
        else:
            raise DataFileError(f"{path}: {key} has dtype {x.dtype} and shape {x.shape}: expected uint8 "
                                f"(or integers 0..255) or float images")
    if x.ndim not in (2, 3, 4):
        raise DataFileError(f"{path}: {key} has shape {x.shape}: expected {SHAPES}")
    if x.shape[0] == 0 or any(d == 0 for d in x.shape[1:]):
        raise DataFileError(f"{path}: {key} has shape {x.shape}: it holds no examples (expected {SHAPES})")
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise DataFileError(f"{path}: {key} (shape {x.shape}) has {int((~np.isfinite(x)).sum())} values "
                                f"that are NaN or infinite")
        x = x.astype(np.float32)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[3] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)


def _as_bytes(x: np.ndarray) -> np.ndarray | None:
    """float images whose values are all k/255 in [0, 1], as the uint8 k; else None."""
    if x.ndim != 4 or x.min() < 0 or x.max() > 1:
        return None
    k = np.rint(x * np.float32(255))
    return k.astype(np.uint8) if np.allclose(k / np.float32(255), x, rtol=0, atol=1e-6) else None


def _labels(path: Path, key: str, y: np.ndarray, n: int, xkey: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataFileError(f"{path}: {key} has shape {y.shape}: expected 1-D integer labels ({n},)")
    if y.dtype.kind == "f" and y.size and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)  # labels saved as floats: 0.0, 1.0, ...
    if y.dtype.kind not in "iu":
        raise DataFileError(f"{path}: {key} has dtype {y.dtype} (shape {y.shape}): expected integer labels")
    if len(y) != n:
        raise DataFileError(f"{path}: {key} has shape {y.shape} but {xkey} has {n} examples: one label each")
    if y.size and y.min() < 0:
        raise DataFileError(f"{path}: {key} (shape {y.shape}) has a negative label ({int(y.min())}): "
                            f"expected 0..K-1")
    if y.size and y.max() >= MAX_CLASSES:
        raise DataFileError(f"{path}: {key} (shape {y.shape}) has label {int(y.max())}: expected "
                            f"0..K-1 with K <= {MAX_CLASSES}")
    return y.astype(np.int64)


def load_npz(path: Path | str) -> dict:
    """The checked arrays of a `.npz` file: `x_train, y_train, x_test, y_test` (and `x_val,
    y_val` when given) plus `num_classes` and `image` (whether the inputs are images)."""
    path = Path(path).expanduser()
    z = _read(path)
    missing = [k for k in REQUIRED if k not in z]
    if missing:
        raise DataFileError(f"{path}: missing {', '.join(missing)} (it has {', '.join(sorted(z)) or 'no arrays'}; "
                            f"needed: {', '.join(REQUIRED)}, optional {', '.join(OPTIONAL)})")
    extra = sorted(set(z) - set(REQUIRED) - set(OPTIONAL))
    if extra:
        raise DataFileError(f"{path}: unexpected arrays {', '.join(extra)} (allowed: "
                            f"{', '.join(REQUIRED + OPTIONAL)})")
    if ("x_val" in z) != ("y_val" in z):
        have, lack = ("x_val", "y_val") if "x_val" in z else ("y_val", "x_val")
        raise DataFileError(f"{path}: has {have} (shape {z[have].shape}) but no {lack}: give both or neither")
    out: dict = {}
    for split in ("train", "val", "test"):
        if f"x_{split}" not in z:
            continue
        xk, yk = f"x_{split}", f"y_{split}"
        out[xk] = _images(path, xk, z[xk])
        out[yk] = _labels(path, yk, z[yk], len(out[xk]), xk)
    ref = out["x_train"]
    for xk in ("x_val", "x_test"):
        if xk in out and out[xk].shape[1:] != ref.shape[1:]:
            raise DataFileError(f"{path}: {xk} has examples of shape {z[xk].shape[1:]} but x_train's are "
                                f"{z['x_train'].shape[1:]}: every split needs the same shape")
    for xk in ("x_val", "x_test"):
        if xk in out and out[xk].dtype != ref.dtype:  # 0..255 against 0..1? refused, not guessed
            raise DataFileError(f"{path}: {xk} is {z[xk].dtype} but x_train is {z['x_train'].dtype}: give every "
                                f"split the same dtype (and scale)")
    xkeys = [k for k in ("x_train", "x_val", "x_test") if k in out]
    if ref.dtype == np.float32:
        as_bytes = [_as_bytes(out[k]) for k in xkeys]
        if all(b is not None for b in as_bytes):  # 8-bit images saved as floats: stored as bytes
            out.update(zip(xkeys, as_bytes))
    labels = np.concatenate([out[k] for k in ("y_train", "y_val", "y_test") if k in out])
    out["num_classes"] = max(2, int(labels.max()) + 1)
    out["image"] = ref.ndim == 4
    return out
