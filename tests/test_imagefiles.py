"""The image sets read from files (CIFAR-10 / CIFAR-100 python batches, a user's .npz) and
scikit-learn's digits: images stay (N, C, H, W), every bad array or missing file is named (exit 2
from the command line), and label noise, random labels, RATT, k-NN and the memorization metrics
work on every image set. The tests write their own tiny files."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from gengap_tui.cli import main
from gengap_tui.config import build
from gengap_tui.core import data
from gengap_tui.core.datafiles import (
    CIFAR10_TEST_BATCH,
    CIFAR10_TRAIN_BATCHES,
    DataFileError,
    load_cifar100_images,
    write_cifar100,
    write_cifar_batch,
)
from gengap_tui.core.npzfile import load_npz
from gengap_tui.core.trainer import Trainer

try:
    import sklearn  # noqa: F401

    HAVE_SKLEARN = True
except ImportError:
    HAVE_SKLEARN = False


def need_sklearn():
    if HAVE_SKLEARN:
        return
    if os.environ.get("CI"):
        pytest.fail("scikit-learn is not installed, but CI runs the digits tests: .ci/run installs gengap-tui[digits]")
    pytest.skip("scikit-learn is not installed (pip install 'gengap-tui[digits]')")


def write_cifar10(folder, n_per_batch=30, n_test=40, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH):
        n = n_test if name == CIFAR10_TEST_BATCH else n_per_batch
        write_cifar_batch(folder / name, rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n))
    return folder


def write_c100(folder, n_train=150, n_test=40, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, n in (("train", n_train), ("test", n_test)):
        x, y = rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 100, n)
        write_cifar100(folder, name, x, y)
        arrays[name] = (x, y)
    return arrays


def test_cifar100_python_files_fine_labels(tmp_path):
    arrays = write_c100(tmp_path / "cifar-100-python")
    x, y, xt, yt = load_cifar100_images(tmp_path)  # the folder above cifar-100-python/ works too
    assert x.shape == (150, 3, 32, 32) and x.dtype == np.uint8 and xt.shape == (40, 3, 32, 32)
    np.testing.assert_array_equal(x.reshape(150, -1), arrays["train"][0])
    np.testing.assert_array_equal(y, arrays["train"][1])  # the fine labels, not the coarse ones
    np.testing.assert_array_equal(yt, arrays["test"][1])
    d = data.load(build({}, ["data.dataset=cifar100", f"data.path={tmp_path}", "data.n_train=100",
                             "data.n_val=30", "data.n_test=40"]))
    assert d.num_classes == 100 and d.image_shape == (3, 32, 32) and d.mean.shape == (3,)


def test_cifar100_label_out_of_range_named(tmp_path):
    write_c100(tmp_path)
    write_cifar100(tmp_path, "test", np.zeros((3, 3072), np.uint8), [0, 100, 5])
    with pytest.raises(DataFileError, match=r"test: labels must lie in 0\.\.99, found 100"):
        load_cifar100_images(tmp_path)


@pytest.mark.parametrize("kind,files", [("cifar10", ("data_batch_1", "test_batch")), ("cifar100", ("train", "test"))])
def test_missing_files_exit_2_naming_them_and_data_path(tmp_path, capsys, kind, files):
    code = main(["run", "default", "--set", f"data.dataset={kind}", "--set", f"data.path={tmp_path}",
                 "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert all(f in err for f in files) and str(tmp_path) in err
    assert "set data.path" in err and "--set data.path=PATH" in err
    assert not any((tmp_path / "runs").glob("*"))  # no run directory


# ------------------------------------------------------------------------------------------- npz


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _good(n=60, nt=20, shape=(8, 8, 3), dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    x = lambda k: rng.integers(0, 256, (k, *shape)).astype(dtype)  # noqa: E731
    return {"x_train": x(n), "y_train": rng.integers(0, 4, n), "x_test": x(nt), "y_test": rng.integers(0, 4, nt)}


def test_npz_layouts_and_dtypes(tmp_path):
    nhwc = _good()
    z = load_npz(_npz(tmp_path / "a.npz", **nhwc))
    assert z["x_train"].shape == (60, 3, 8, 8) and z["x_train"].dtype == np.uint8 and z["image"]
    np.testing.assert_array_equal(z["x_train"], nhwc["x_train"].transpose(0, 3, 1, 2))
    assert z["num_classes"] == 4
    nchw = _good(shape=(3, 6, 5))
    assert load_npz(_npz(tmp_path / "b.npz", **nchw))["x_train"].shape == (60, 3, 6, 5)
    gray = _good(shape=(7, 7))
    assert load_npz(_npz(tmp_path / "c.npz", **gray))["x_train"].shape == (60, 1, 7, 7)
    # float images of k/255 are 8-bit images: stored as the bytes k
    f = {k: (v.astype(np.float32) / 255 if k.startswith("x") else v) for k, v in nchw.items()}
    zf = load_npz(_npz(tmp_path / "d.npz", **f))
    assert zf["x_train"].dtype == np.uint8
    np.testing.assert_array_equal(zf["x_train"], nchw["x_train"])
    # other floats stay as given (float32)
    g = {k: (v.astype(np.float32) * 0.37 - 20 if k.startswith("x") else v) for k, v in nchw.items()}
    assert load_npz(_npz(tmp_path / "e.npz", **g))["x_train"].dtype == np.float32
    # feature vectors: not images
    rows = {"x_train": np.ones((30, 5), np.float32), "y_train": np.arange(30) % 3,
            "x_test": np.ones((9, 5), np.float32), "y_test": np.arange(9) % 3}
    zr = load_npz(_npz(tmp_path / "r.npz", **rows))
    assert not zr["image"] and zr["x_train"].shape == (30, 5) and zr["num_classes"] == 3


def test_npz_own_validation_split(tmp_path):
    arrays = _good(n=80)
    rng = np.random.default_rng(5)
    arrays.update(x_val=rng.integers(0, 256, (25, 8, 8, 3)).astype(np.uint8), y_val=rng.integers(0, 4, 25))
    path = _npz(tmp_path / "v.npz", **arrays)
    d = data.load(build({}, ["data.dataset=npz", f"data.path={path}", "data.n_train=70", "data.n_val=20",
                             "data.n_test=20"]))
    np.testing.assert_array_equal(d.x_val, arrays["x_val"][:20].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(d.y_val, arrays["y_val"][:20])
    assert d.x_train.shape == (70, 3, 8, 8)


def _bad_cases():
    g = _good()
    n = lambda **kw: {**_good(), **kw}  # noqa: E731
    drop = {k: v for k, v in g.items() if k != "x_test"}
    nan = g["x_train"].astype(np.float32)
    nan[3, 0, 0, 0] = np.nan
    return [
        ("missing", drop, ["missing x_test", "x_train, y_train, x_test, y_test"]),
        ("labels-2d", n(y_train=np.zeros((60, 2), np.int64)), ["y_train has shape (60, 2)", "1-D"]),
        ("labels-count", n(y_test=np.zeros(19, np.int64)), ["y_test has shape (19,)", "x_test has 20"]),
        ("labels-float", n(y_train=np.full(60, 0.5)), ["y_train has dtype float64", "integer labels"]),
        ("labels-negative", n(y_train=np.full(60, -1)), ["y_train (shape (60,)) has a negative label (-1)"]),
        ("shape-5d", n(x_train=np.zeros((60, 2, 8, 8, 3), np.uint8)), ["x_train has shape (60, 2, 8, 8, 3)",
                                                                       "(N, H, W), (N, C, H, W)"]),
        ("shape-1d", n(x_test=np.zeros(20, np.uint8)), ["x_test has shape (20,)"]),
        ("image-size", n(x_test=np.zeros((20, 9, 9, 3), np.uint8)), ["x_test has examples of shape (9, 9, 3)",
                                                                     "x_train's are (8, 8, 3)"]),
        ("nan", n(x_train=nan), ["x_train (shape (60, 8, 8, 3)) has 1 values that are NaN"]),
        ("dtype", n(x_train=np.zeros((60, 8, 8, 3), np.complex64)), ["x_train has dtype complex64 and shape (60, 8, 8, 3)"]),
        ("val-alone", n(x_val=np.zeros((5, 8, 8, 3), np.uint8)), ["has x_val (shape (5, 8, 8, 3)) but no y_val"]),
        ("mixed", n(x_test=np.zeros((20, 8, 8, 3), np.float32)), ["x_test is float32 but x_train is uint8"]),
        ("extra", n(x_extra=np.zeros(3)), ["unexpected arrays x_extra"]),
        ("empty", n(x_train=np.zeros((0, 8, 8, 3), np.uint8), y_train=np.zeros(0, np.int64)),
         ["x_train has shape (0, 8, 8, 3): it holds no examples"]),
    ]


@pytest.mark.parametrize("name,arrays,needles", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_npz_bad_arrays_named(tmp_path, name, arrays, needles):
    path = _npz(tmp_path / f"{name}.npz", **arrays)
    with pytest.raises(DataFileError) as ei:
        load_npz(path)
    msg = str(ei.value)
    assert str(path) in msg
    for needle in needles:
        assert needle in msg


def test_npz_object_arrays_and_non_npz_files_named(tmp_path):
    path = _npz(tmp_path / "obj.npz", **{**_good(), "y_test": np.array([object()] * 20)})
    with pytest.raises(DataFileError, match="y_test.*without pickle"):
        load_npz(path)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataFileError, match="junk.npz: not a readable .npz file"):
        load_npz(junk)


def test_npz_bad_file_and_missing_file_exit_2(tmp_path, capsys):
    bad = _npz(tmp_path / "bad.npz", **{**_good(), "y_train": np.zeros((60, 2), np.int64)})
    missing = tmp_path / "nope.npz"
    for path, needles in ((bad, ["y_train has shape (60, 2)"]),
                          (missing, ["no such file", "x_train, y_train, x_test, y_test", "set data.path"])):
        code = main(["run", "default", "--set", "data.dataset=npz", "--set", f"data.path={path}",
                     "--set", "data.n_train=40", "--set", "data.n_val=10", "--set", "data.n_test=20",
                     "--runs-dir", str(tmp_path / "runs"), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and str(path) in err
        for needle in needles:
            assert needle in err
    assert not any((tmp_path / "runs").glob("*"))


def test_npz_feature_vectors_refuse_augmentation(tmp_path):
    rows = {"x_train": np.ones((30, 5), np.float32), "y_train": np.arange(30) % 3,
            "x_test": np.ones((10, 5), np.float32), "y_test": np.arange(10) % 3}
    path = _npz(tmp_path / "rows.npz", **rows)
    base = ["data.dataset=npz", f"data.path={path}", "data.n_train=20", "data.n_val=10", "data.n_test=10"]
    d = data.load(build({}, base))
    assert not d.is_image and d.x_train.shape == (20, 5) and d.x_train.dtype == np.float32
    with pytest.raises(ValueError, match=r"regularization.augment = 'flip' needs images.*x_train of shape \(30, 5\)"):
        data.load(build({}, base + ["regularization.augment=flip"]))


# ---------------------------------------------------------------------------------------- digits


def test_digits_are_scikit_learns_8x8_images(data_cache):
    need_sklearn()
    d = data.load(build({}, ["data.dataset=digits", "data.n_train=1000", "data.n_val=200", "data.n_test=297"]))
    assert d.x_train.shape == (1000, 1, 8, 8) and d.x_train.dtype == np.uint8 and d.num_classes == 10
    assert d.x_test.shape == (297, 1, 8, 8) and d.x_train.max() == 16  # the original 17 grey levels
    assert set(np.unique(d.y_test)) == set(range(10))
    tr = {r.tobytes() for r in d.x_train}
    assert sum(r.tobytes() in tr for r in d.x_test) < 10  # (a few digits are pixel-identical)
    with pytest.raises(ValueError, match=r"n_train \+ data.n_val = 1600, but scikit-learn's digits holds 1500"):
        data.load(build({}, ["data.dataset=digits", "data.n_train=1400", "data.n_val=200"]))


# ------------------------------------------------------------------ label noise & co on every set


def _image_sets(tmp_path):
    c10 = write_cifar10(tmp_path / "c10")
    write_c100(tmp_path / "c100")
    npz = _npz(tmp_path / "own.npz", **_good(n=150, nt=40))
    from gengap_tui.core.datafiles import write_idx

    rng = np.random.default_rng(3)
    (tmp_path / "mnist").mkdir()
    for prefix, n in (("train", 150), ("t10k", 40)):
        write_idx(tmp_path / "mnist" / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / "mnist" / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))
    sets = [["data.dataset=cifar10", f"data.path={c10}"], ["data.dataset=cifar100", f"data.path={tmp_path / 'c100'}"],
            ["data.dataset=npz", f"data.path={npz}"], ["data.dataset=mnist", f"data.path={tmp_path / 'mnist'}"]]
    if HAVE_SKLEARN or os.environ.get("CI"):
        sets.append(["data.dataset=digits"])
    return sets


def test_noise_random_labels_ratt_knn_and_memorization_on_every_image_set(tmp_path, data_cache):
    for ds in _image_sets(tmp_path):
        for noise in (["noise.label_noise=0.4"], ["noise.label_noise=1.0", "noise.kind=random"]):
            cfg = build({"name": "t"}, ds + noise + [
                "data.n_train=100", "data.n_val=20", "data.n_test=40", "ratt.enabled=true", "ratt.n_random=25",
                "baselines.knn=true", "model.width=32", "optim.epochs=2", "regularization.augment=crop-flip",
                "device=cpu", "run.threads=1"])
            rows = []
            s = Trainer(cfg).run(on_epoch=rows.append)
            assert s["status"] == "completed", (ds, s["reason"])
            last = rows[-1]
            for k in ("train_clean_err", "noisy_memorized", "noisy_true_acc", "ratt_random_err", "ratt_bound"):
                assert last[k] is not None and math.isfinite(last[k]), (ds, k)
            assert 0 <= s["baseline_knn_test_err"] <= 1 and s["baseline_knn_train_err"] <= 0.02  # 1-NN interpolates
            # (up to digits' few pixel-identical images)
            assert s["n_corrupted"] == round(float(noise[0].split("=")[1]) * 100)


def test_a_digits_convnet_fits_100_percent_random_labels(data_cache):
    """Zhang et al. 2017 on real images: the 2-D convnet drives training error on 300 digits with
    every label random to (near) zero, while validation stays near chance."""
    need_sklearn()
    cfg = build({"name": "t"}, ["data.dataset=digits", "data.n_train=300", "data.n_val=200", "data.n_test=297",
                                "noise.label_noise=1.0", "noise.kind=random", "model.kind=cnn2d", "model.width=16",
                                "optim.lr=0.003", "optim.batch_size=50", "optim.epochs=80",
                                "early_stopping.enabled=false", "device=cpu", "run.threads=1"])
    tr = Trainer(cfg)
    rows = []
    tr.run(on_epoch=lambda r: (rows.append(r), r["train_err"] <= 0.01 and tr.request_stop("fitted")))
    assert tr.epochs_to_fit is not None, f"not fitted in 80 epochs: train_err {rows[-1]['train_err']:.3f}"
    assert rows[-1]["train_err"] <= 0.01 and rows[-1]["noisy_memorized"] >= 0.99
    assert rows[-1]["val_err"] > 0.7  # chance is 0.9: nothing about the true labels was learned
    assert rows[0]["train_err"] > 0.6  # it had to memorize them
