
import numpy as np
import pytest

from gengap_tui.config import build
from gengap_tui.core import data


@pytest.mark.parametrize("kind", ["symmetric", "pairflip", "random"])
@pytest.mark.parametrize("fraction", [0.0, 0.15, 0.333, 1.0])
def test_label_noise_counts_and_mask(kind, fraction):
    y = np.arange(1000) % 10
    noisy, changed, n = data.corrupt_labels(y, 10, fraction, kind, np.random.default_rng(0))
    assert n == round(fraction * 1000)
    assert np.array_equal(changed, noisy != y)
    assert noisy.min() >= 0 and noisy.max() <= 9
    if kind in ("symmetric", "pairflip"):
        assert changed.sum() == n  # every chosen label really changes
    else:
        assert changed.sum() <= n
        if fraction == 1.0:  # about 1/10 are redrawn to their own class
            assert 0.85 * n < changed.sum() < 0.95 * n
    if kind == "pairflip":
        assert np.array_equal(noisy[changed], (y[changed] + 1) % 10)


def test_symmetric_noise_is_uniform_over_other_classes():
    y = np.zeros(20000, dtype=np.int64)
    noisy, changed, _ = data.corrupt_labels(y, 10, 1.0, "symmetric", np.random.default_rng(1))
    counts = np.bincount(noisy, minlength=10)
    assert counts[0] == 0
    assert np.all(np.abs(counts[1:] / 20000 - 1 / 9) < 0.01)


def test_label_noise_depends_on_seed_only():
    y = np.arange(500) % 10
    a = data.corrupt_labels(y, 10, 0.2, "symmetric", np.random.default_rng([3, 1]))[0]
    b = data.corrupt_labels(y, 10, 0.2, "symmetric", np.random.default_rng([3, 1]))[0]
    c = data.corrupt_labels(y, 10, 0.2, "symmetric", np.random.default_rng([4, 1]))[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_mnist1d_canonical_splits_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENGAP_CACHE_DIR", str(tmp_path))
    generated = []
    real_generate = data._mnist1d_generate
    monkeypatch.setattr(data, "_mnist1d_generate", lambda n, seed: generated.append((n, seed)) or real_generate(n, seed))
    s = data.mnist1d_splits(4000, 1000)
    assert generated == [(5000, data.MNIST1D_SEED), (1000, data.MNIST1D_VAL_SEED)]
    assert s["x_train"].shape == (4000, 40) and s["x_test"].shape == (1000, 40)
    assert s["x_val"].shape == (1000, 40)
    assert set(np.unique(s["y_train"])) == set(range(10))
    # the canonical set, as the mnist1d package makes it with its default arguments
    from mnist1d.data import get_dataset_args, make_dataset

    ref = make_dataset(get_dataset_args())
    np.testing.assert_allclose(s["x_train"], ref["x"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(s["y_test"], ref["y_test"])
    # validation never overlaps train or test
    rows = {r.tobytes() for r in np.concatenate([s["x_train"], s["x_test"]])}
    assert not any(r.tobytes() in rows for r in s["x_val"])
    # the second start reads the cache: nothing is generated again
    again = data.mnist1d_splits(4000, 1000)
    assert len(generated) == 2
    assert len(list(tmp_path.glob("mnist1d-*.npz"))) == 1
    np.testing.assert_array_equal(again["x_val"], s["x_val"])


def test_load_applies_noise_binary_and_keeps_clean_labels():
    cfg = build({}, ["data.n_train=500", "data.n_val=200", "noise.label_noise=0.2", "data.binary=true"])
    d = data.load(cfg)
    assert d.num_classes == 2 and d.n_corrupted == 100
    assert set(np.unique(d.y_train_clean)) == {0, 1}
    assert d.changed.sum() == 100
    assert np.array_equal(d.y_train[~d.changed], d.y_train_clean[~d.changed])
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64


@pytest.mark.parametrize("name", ["moons", "circles", "spirals", "xor"])
def test_synthetic_sets(name):
    cfg = build({}, [f"data.dataset={name}", "data.n_train=300", "data.n_val=100", "data.n_test=200"])
    d = data.load(cfg)
    assert d.x_train.shape == (300, 2) and d.x_val.shape == (100, 2) and d.x_test.shape == (200, 2)
    assert d.num_classes == 2 and set(np.unique(d.y_train)) == {0, 1}
    assert not np.array_equal(d.x_train[:100], d.x_val)
    # fixed data: the run seed changes only the noise draw, not the examples
    d2 = data.load(build({}, [f"data.dataset={name}", "data.n_train=300", "data.n_val=100",
                               "data.n_test=200", "seed=5"]))
    np.testing.assert_array_equal(d.x_train, d2.x_train)


def test_file_datasets_carve_validation_from_the_training_file(tmp_path):
    from gengap_tui.core.datafiles import write_idx

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 20)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    cfg = build({}, ["data.dataset=fashion-mnist", f"data.path={tmp_path}", "data.n_train=40",
                     "data.n_val=20", "data.n_test=10"])
    d = data.load(cfg)
    # images stay images: raw uint8 pixels (N, 1, 28, 28), normalized on the device (core/images.py)
    assert d.x_train.shape == (40, 1, 28, 28) and d.x_val.shape == (20, 1, 28, 28) and d.x_test.shape == (10, 1, 28, 28)
    assert d.x_train.dtype == np.uint8 and d.input_dim == 784 and d.image_shape == (1, 28, 28)
    rows = {r.tobytes() for r in d.x_train}
    assert not any(r.tobytes() in rows for r in d.x_val)
    x = d.rows(d.x_train)  # standardized with training statistics
    assert x.shape == (40, 784) and abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    with pytest.raises(ValueError, match="n_train"):
        data.load(build({}, ["data.dataset=mnist", f"data.path={tmp_path}", "data.n_train=50", "data.n_val=20"]))
