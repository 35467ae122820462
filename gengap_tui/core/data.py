"""Datasets and splits, label noise that remembers which labels it changed.

The data never depend on the run's `seed` (so runs that differ only in seed or settings see the
same examples); the seed drives model init, data order, dropout and the label-noise draw.

- `mnist1d` (default): generated offline with the `mnist1d` package's `make_dataset` — the
  canonical 4000 training and 1000 test examples (its default arguments, seed 42); validation is
  drawn fresh from the same generator under another seed, so it never overlaps train or test.
  Generated sets are cached on disk (`$GENGAP_CACHE_DIR`, else `$XDG_CACHE_HOME/gengap-tui`).
- `moons`, `circles`, `spirals`, `xor`: 2-D synthetic sets, two classes.
- `mnist`, `fashion-mnist` (IDX files), `cifar10`, `cifar100` (python batches) and `npz` (your
  own arrays, `npzfile.py`), read from `data.path`; `digits` (scikit-learn's bundled 8x8 digits).
  Validation is carved from the training file (or an npz's `x_val, y_val`), disjoint from the
  training examples.

Image sets stay images: `x_*` hold the raw pixels `(N, C, H, W)` (uint8 for 8-bit images) and
`mean` / `std` the training split's per-channel statistics, which `core/images.py` applies on the
device as batches are taken. Every other set is float32 rows `(N, D)`, already standardized.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MNIST1D_SEED = 42  # the canonical set
MNIST1D_VAL_SEED = 1042  # validation: same generator, another seed
MNIST1D_RATT_SEED = 2042  # RATT's randomly labelled points: yet another seed
MNIST1D_TEST = 1000
FILE_SPLIT_SEED = 12345
CACHE_VERSION = 1


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # float32 (N, D); an image set's raw pixels (N, C, H, W)
    y_train: np.ndarray  # int64, the labels trained on (after label noise)
    y_train_clean: np.ndarray  # int64, the original labels
    changed: np.ndarray  # bool, y_train != y_train_clean
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    n_corrupted: int = 0  # labels chosen for corruption (round(fraction * n))
    # RATT: fresh inputs from the same distribution with uniformly random labels (else None)
    x_random: np.ndarray | None = None
    y_random: np.ndarray | None = None
    # an image set's per-channel mean and standard deviation over its training split (in the
    # stored pixels' units), applied on the device; None for sets of rows
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    # an image set's (C, H, W), from its pixels' shape; a Dataset made of flat float rows with an
    # image_shape is reshaped to images (normalized already: mean 0, std 1 unless given)
    image_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.image_shape is None and self.x_train.ndim == 4 and self.mean is not None:
            self.image_shape = tuple(int(v) for v in self.x_train.shape[1:])  # type: ignore[assignment]
        elif self.image_shape is not None:
            shape = tuple(int(v) for v in self.image_shape)
            self.image_shape = shape  # type: ignore[assignment]
            for k in ("x_train", "x_val", "x_test", "x_random"):
                a = getattr(self, k)
                if a is not None and a.ndim == 2:
                    setattr(self, k, a.reshape(len(a), *shape))
            if self.mean is None:
                self.mean, self.std = np.zeros(shape[0], np.float32), np.ones(shape[0], np.float32)

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))

    @property
    def is_image(self) -> bool:
        return self.image_shape is not None

    def rows(self, x: np.ndarray) -> np.ndarray:
        """A split as float32 rows (N, D), normalized as the trainer sees it (for baselines, tests)."""
        if not self.is_image:
            return x
        m, s = self.mean.reshape(1, -1, 1, 1), self.std.reshape(1, -1, 1, 1)
        return ((x.astype(np.float32) - m) / s).reshape(len(x), -1).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# cache


def cache_dir() -> Path:
    env = os.environ.get("GENGAP_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gengap-tui"


# generated sets this process has loaded, by cache file (a warm training process keeps its
# preset's: `session.prewarm`); read-only, every caller gets its own copy
_MEMO: dict[Path, dict[str, np.ndarray]] = {}


def _cached(key: dict, make) -> dict[str, np.ndarray]:
    """The arrays of a generated set: from this process's memo, the disk cache, or `make()`.
    Always fresh copies: nothing a run does to them reaches the next run."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{key['kind']}-{digest}.npz"
    if path not in _MEMO:
        _MEMO[path] = _load_or_make(path, make)
        for a in _MEMO[path].values():
            a.flags.writeable = False
    return {k: a.copy() for k, a in _MEMO[path].items()}


def _load_or_make(path: Path, make) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError):
        pass
    arrays = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs the next start its generation time
    return arrays


# ---------------------------------------------------------------------------------------------
# MNIST-1D


def _mnist1d_generate(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All `num_samples` examples of one `make_dataset` call (train and test parts joined, in
    the generator's order). Every split size draws from the same 5,000-example call, so the last
    calls are kept in memory (~3 s each); callers get copies."""
    x, y = _mnist1d_generate_kept(num_samples, seed)
    return x.copy(), y.copy()


@functools.lru_cache(maxsize=4)
def _mnist1d_generate_kept(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    state = np.random.get_state()  # make_dataset seeds numpy's global generator
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    return x, y


def mnist1d_fresh(n: int, seed: int) -> np.ndarray:
    """`n` fresh MNIST-1D inputs from the generator under `seed` (cached)."""

    def make() -> dict[str, np.ndarray]:
        x, _ = _mnist1d_generate(-(-n // 10) * 10, seed)
        return {"x": x[:n]}

    return _cached({"kind": "mnist1d-fresh", "n": n, "seed": seed, "v": CACHE_VERSION}, make)["x"]


def mnist1d_splits(n_train: int, n_val: int) -> dict[str, np.ndarray]:
    def make() -> dict[str, np.ndarray]:
        if n_train <= 4000:
            # canonical: 5000 examples, the first 4000 train, the last 1000 test
            x, y = _mnist1d_generate(5000, MNIST1D_SEED)
            xtr, ytr, xte, yte = x[:n_train], y[:n_train], x[4000:], y[4000:]
        else:
            total = -(-(n_train + MNIST1D_TEST) // 10) * 10
            x, y = _mnist1d_generate(total, MNIST1D_SEED)
            xtr, ytr = x[:n_train], y[:n_train]
            xte, yte = x[n_train : n_train + MNIST1D_TEST], y[n_train : n_train + MNIST1D_TEST]
        xv, yv = _mnist1d_generate(-(-n_val // 10) * 10, MNIST1D_VAL_SEED)
        return {"x_train": xtr, "y_train": ytr, "x_val": xv[:n_val], "y_val": yv[:n_val],
                "x_test": xte, "y_test": yte}

    key = {"kind": "mnist1d", "n_train": n_train, "n_val": n_val, "v": CACHE_VERSION}
    return _cached(key, make)


# ---------------------------------------------------------------------------------------------
# 2-D synthetic sets (two classes)


def synthetic(name: str, n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % 2
    rng.shuffle(y)
    if name == "moons":
        t = rng.uniform(0, np.pi, n)
        x = np.where(y[:, None] == 0,
                     np.stack([np.cos(t), np.sin(t)], 1),
                     np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
    elif name == "circles":
        t = rng.uniform(0, 2 * np.pi, n)
        r = np.where(y == 0, 1.0, 0.5)
        x = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    elif name == "spirals":
        t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
        sign = np.where(y == 0, 1.0, -1.0)
        x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], 1) / (3 * np.pi)
    elif name == "xor":
        x = rng.uniform(-1, 1, (n, 2))
        y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)
    else:
        raise ValueError(f"unknown synthetic dataset {name!r}")
    x = x + noise * rng.standard_normal(x.shape)
    return x.astype(np.float32), y.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# label noise


def corrupt_labels(y: np.ndarray, num_classes: int, fraction: float, kind: str,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Corrupt exactly round(fraction * n) labels chosen with `rng`.

    symmetric: uniform over the *other* classes; pairflip: c -> (c + 1) mod K;
    random: redrawn uniformly over all classes (so some keep their label by chance).
    Returns (noisy labels, mask of labels that actually changed, number chosen).
    """
    n = len(y)
    n_flip = int(round(fraction * n))
    idx = rng.choice(n, size=n_flip, replace=False) if n_flip else np.zeros(0, dtype=np.int64)
    out = y.copy()
    if kind == "symmetric":
        out[idx] = (y[idx] + rng.integers(1, num_classes, size=n_flip)) % num_classes
    elif kind == "pairflip":
        out[idx] = (y[idx] + 1) % num_classes
    elif kind == "random":
        out[idx] = rng.integers(0, num_classes, size=n_flip)
    else:
        raise ValueError(f"unknown label-noise kind {kind!r}")
    return out, out != y, n_flip


# ---------------------------------------------------------------------------------------------
# assembling a dataset from the config


def _carve(x: np.ndarray, y: np.ndarray, n_train: int, n_val: int, field_source: str):
    n = len(y)
    if n_train + n_val > n:
        raise ValueError(
            f"data.n_train + data.n_val = {n_train + n_val}, but {field_source} holds {n} "
            f"training examples (allowed: n_train + n_val <= {n})"
        )
    perm = np.random.default_rng(FILE_SPLIT_SEED).permutation(n)
    tr, va = perm[:n_train], perm[n - n_val:]
    return x[tr], y[tr], x[va], y[va], x[perm[n_train:n - n_val]]


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of images (N, C, H, W) (a constant channel's std is 1)."""
    c = x.shape[1]
    mean = np.zeros(c, np.float64)
    sq = np.zeros(c, np.float64)
    for i in range(0, len(x), 4096):  # in chunks: no float64 copy of a whole CIFAR split
        chunk = x[i:i + 4096].astype(np.float64)
        mean += chunk.sum((0, 2, 3))
        sq += (chunk ** 2).sum((0, 2, 3))
    count = len(x) * x.shape[2] * x.shape[3]
    mean /= count
    std = np.sqrt(np.maximum(sq / count - mean ** 2, 0.0))
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)



def _file_arrays(cfg) -> tuple:
    """(x_all, y_all, x_val, y_val, x_test, y_test, num_classes) of a set read from files (or from
    scikit-learn): x_val / y_val are the file's own validation split (npz) or None."""
    d = cfg.data
    from . import datafiles

    xv = yv = None
    num_classes = 10
    if d.dataset in ("mnist", "fashion-mnist"):
        x_all, y_all, xte, yte = datafiles.load_idx_images(d.path, d.dataset)
    elif d.dataset == "cifar10":
        x_all, y_all, xte, yte = datafiles.load_cifar10_images(d.path)
    elif d.dataset == "cifar100":
        x_all, y_all, xte, yte = datafiles.load_cifar100_images(d.path)
        num_classes = 100
    elif d.dataset == "digits":  # cached like a generated set: the next run needs no scikit-learn import (~2 s)
        keys = ("x_train", "y_train", "x_test", "y_test")
        z = _cached({"kind": "digits", "v": CACHE_VERSION}, lambda: dict(zip(keys, datafiles.load_digits_images())))
        x_all, y_all, xte, yte = (z[k] for k in keys)
    elif d.dataset == "npz":
        from .npzfile import load_npz

        z = load_npz(d.path)
        x_all, y_all, xte, yte = z["x_train"], z["y_train"], z["x_test"], z["y_test"]
        xv, yv = z.get("x_val"), z.get("y_val")
        num_classes = z["num_classes"]
        if not z["image"]:
            why = []
            if cfg.model.kind in ("cnn2d", "resnet18"):
                why.append(f"model.kind = {cfg.model.kind!r} (a 2-D convnet)")
            if cfg.regularization.augment != "none":
                why.append(f"regularization.augment = {cfg.regularization.augment!r}")
            if why:
                raise ValueError(f"{' and '.join(why)} needs images, but data.path {d.path!r} holds x_train of "
                                 f"shape {tuple(x_all.shape)} (feature vectors): give images (N, H, W), "
                                 f"(N, C, H, W) or (N, H, W, C), or use model.kind = 'mlp' and no augmentation")
    else:
        raise ValueError(f"unknown dataset {d.dataset!r}")
    return x_all, y_all, xv, yv, xte, yte, num_classes


def load(cfg) -> Dataset:
    """Build the dataset a config asks for (`cfg` is a `gengap_tui.config.Config`)."""
    d = cfg.data
    num_classes = 10
    mean = std = None
    if d.dataset == "mnist1d":
        s = mnist1d_splits(d.n_train, d.n_val)
        xtr, ytr, xv, yv, xte, yte = (s[k] for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"))
    elif d.dataset in ("moons", "circles", "spirals", "xor"):
        num_classes = 2
        parts = [synthetic(d.dataset, n, d.synthetic_noise, np.random.default_rng([7, i]))
                 for i, n in enumerate((d.n_train, d.n_val, d.n_test))]
        (xtr, ytr), (xv, yv), (xte, yte) = parts
    else:
        x_all, y_all, xv_file, yv_file, xte, yte, num_classes = _file_arrays(cfg)
        where = "scikit-learn's digits" if d.dataset == "digits" else f"data.path {d.path!r}"
        if xv_file is None:
            xtr, ytr, xv, yv, spare = _carve(x_all, y_all, d.n_train, d.n_val, where)
        else:  # the file's own validation split
            xtr, ytr, _, _, spare = _carve(x_all, y_all, d.n_train, 0, where)
            xv, yv = xv_file[: d.n_val], yv_file[: d.n_val]
        xte, yte = xte[: d.n_test], yte[: d.n_test]
        if xtr.ndim == 4:  # images: raw pixels, normalized per channel on the device
            mean, std = channel_stats(xtr)
        else:
            m, sd = float(xtr.mean()), float(xtr.std()) or 1.0
            xtr, xv, xte, spare = ((a.astype(np.float32) - m) / sd for a in (xtr, xv, xte, spare))
    if d.binary and num_classes > 2:
        ytr, yv, yte = ((a >= num_classes // 2).astype(np.int64) for a in (ytr, yv, yte))
        num_classes = 2
    rng = np.random.default_rng([cfg.seed, 1])
    noisy, changed, n_corrupted = corrupt_labels(ytr, num_classes, cfg.noise.label_noise, cfg.noise.kind, rng)
    if mean is not None:  # images keep their stored dtype (uint8 pixels)
        f32 = lambda a: np.ascontiguousarray(a)  # noqa: E731
    else:
        f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    x_random = y_random = None
    if getattr(cfg, "ratt", None) is not None and cfg.ratt.enabled:
        m = cfg.ratt.n_random
        if d.dataset == "mnist1d":
            x_random = mnist1d_fresh(m, MNIST1D_RATT_SEED)
        elif d.dataset in ("moons", "circles", "spirals", "xor"):
            x_random, _ = synthetic(d.dataset, m, d.synthetic_noise, np.random.default_rng([7, 3]))
        else:
            if len(spare) < m:
                raise ValueError(f"ratt.n_random = {m}, but data.path {d.path!r} has only {len(spare)} training "
                                 f"examples left after train and validation (allowed: n_random <= {len(spare)})")
            x_random = spare[:m]
        # uniformly random labels, drawn with the run's seed (a stream of their own)
        y_random = np.random.default_rng([cfg.seed, 2]).integers(0, num_classes, size=m).astype(np.int64)
        x_random = f32(x_random)
    return Dataset(
        name=d.dataset, x_train=f32(xtr), y_train=noisy, y_train_clean=ytr.astype(np.int64), changed=changed,
        x_val=f32(xv), y_val=yv.astype(np.int64), x_test=f32(xte), y_test=yte.astype(np.int64),
        num_classes=num_classes, n_corrupted=n_corrupted, x_random=x_random, y_random=y_random,
        mean=mean, std=std,
    )
