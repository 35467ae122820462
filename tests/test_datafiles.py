"""Tests for gengap_tui.core.datafiles (IDX and CIFAR-10 loaders)."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from gengap_tui.core.datafiles import (
    CIFAR10_TEST_BATCH,
    CIFAR10_TRAIN_BATCHES,
    DataFileError,
    load_cifar10,
    load_idx,
    write_cifar_batch,
    write_idx,
)

N_TRAIN, N_TEST = 20, 5


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def _labels(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 10, size=n, dtype=np.uint8)


def make_idx(folder: Path, gz: bool = False, dotted: bool = False) -> dict[str, np.ndarray]:
    """Write a tiny MNIST-like folder and return the raw arrays written."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": _images(rng, N_TRAIN),
        "train-labels-idx1-ubyte": _labels(rng, N_TRAIN),
        "t10k-images-idx3-ubyte": _images(rng, N_TEST),
        "t10k-labels-idx1-ubyte": _labels(rng, N_TEST),
    }
    for name, arr in arrays.items():
        fname = name.replace("-idx", ".idx") if dotted else name
        write_idx(folder / (fname + (".gz" if gz else "")), arr)
    return arrays


def _check_idx_roundtrip(folder: Path, arrays: dict[str, np.ndarray], kind: str) -> None:
    x_tr, y_tr, x_te, y_te = load_idx(folder, kind)
    assert x_tr.dtype == np.float32 and x_tr.shape == (N_TRAIN, 784)
    assert x_te.dtype == np.float32 and x_te.shape == (N_TEST, 784)
    assert y_tr.dtype == np.int64 and y_tr.shape == (N_TRAIN,)
    assert y_te.dtype == np.int64 and y_te.shape == (N_TEST,)
    assert 0.0 <= x_tr.min() and x_tr.max() <= 1.0
    np.testing.assert_array_equal(
        np.rint(x_tr * 255).astype(np.uint8),
        arrays["train-images-idx3-ubyte"].reshape(N_TRAIN, 784),
    )
    np.testing.assert_array_equal(
        np.rint(x_te * 255).astype(np.uint8),
        arrays["t10k-images-idx3-ubyte"].reshape(N_TEST, 784),
    )
    np.testing.assert_array_equal(y_tr, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(y_te, arrays["t10k-labels-idx1-ubyte"])


# ----------------------------------------------------------------------- IDX OK


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("kind", ["mnist", "fashion-mnist"])
def test_idx_roundtrip(tmp_path: Path, gz: bool, kind: str) -> None:
    arrays = make_idx(tmp_path, gz=gz)
    _check_idx_roundtrip(tmp_path, arrays, kind)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_dotted_mirror_names(tmp_path: Path, gz: bool) -> None:
    arrays = make_idx(tmp_path, gz=gz, dotted=True)
    assert (tmp_path / ("train-images.idx3-ubyte" + (".gz" if gz else ""))).is_file()
    _check_idx_roundtrip(tmp_path, arrays, "mnist")


def test_idx_mixed_plain_and_gz(tmp_path: Path) -> None:
    arrays = make_idx(tmp_path)
    name = "t10k-labels-idx1-ubyte"
    (tmp_path / name).unlink()
    write_idx(tmp_path / (name + ".gz"), arrays[name])
    _check_idx_roundtrip(tmp_path, arrays, "mnist")


def test_write_idx_gz_is_gzipped_with_header(tmp_path: Path) -> None:
    arr = np.arange(6, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", arr)
    raw = gzip.decompress((tmp_path / "a.gz").read_bytes())
    assert raw == bytes([0, 0, 8, 1, 0, 0, 0, 6]) + arr.tobytes()


def test_write_idx_rejects_bad_arrays(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_idx(tmp_path / "a", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError):
        write_idx(tmp_path / "a", np.zeros(3, np.int32))


def test_idx_unknown_kind(tmp_path: Path) -> None:
    make_idx(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        load_idx(tmp_path, "cifar10")


# ------------------------------------------------------------------- IDX errors


def test_idx_missing_files_named(tmp_path: Path) -> None:
    make_idx(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataFileError) as ei:
        load_idx(tmp_path, "fashion-mnist")
    msg = str(ei.value)
    assert str(tmp_path) in msg and "fashion-mnist" in msg
    assert "t10k-labels-idx1-ubyte" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert "t10k-labels.idx1-ubyte" in msg
    assert "train-images" not in msg  # only the missing one is listed


def test_idx_empty_folder_lists_all(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as ei:
        load_idx(tmp_path, "mnist")
    msg = str(ei.value)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        assert name in msg


def test_idx_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="nope"):
        load_idx(tmp_path / "nope", "mnist")


def _corrupt(tmp_path: Path, name: str, mutate) -> Path:
    make_idx(tmp_path)
    p = tmp_path / name
    p.write_bytes(mutate(p.read_bytes()))
    return p


def _assert_error(tmp_path: Path, fname: str, *fragments: str) -> None:
    with pytest.raises(DataFileError) as ei:
        load_idx(tmp_path, "mnist")
    msg = str(ei.value)
    assert fname in msg
    for frag in fragments:
        assert frag in msg


def test_idx_bad_magic(tmp_path: Path) -> None:
    _corrupt(tmp_path, "train-images-idx3-ubyte", lambda b: b"\x01" + b[1:])
    _assert_error(tmp_path, "train-images-idx3-ubyte", "magic")


def test_idx_bad_dtype_code(tmp_path: Path) -> None:
    _corrupt(tmp_path, "t10k-images-idx3-ubyte", lambda b: b[:2] + b"\x0d" + b[3:])
    _assert_error(tmp_path, "t10k-images-idx3-ubyte", "0x0d")


def test_idx_wrong_ndim(tmp_path: Path) -> None:
    _corrupt(tmp_path, "train-labels-idx1-ubyte", lambda b: b[:3] + b"\x03" + b[4:])
    _assert_error(tmp_path, "train-labels-idx1-ubyte", "dimensions")


def test_idx_truncated_data(tmp_path: Path) -> None:
    _corrupt(tmp_path, "train-images-idx3-ubyte", lambda b: b[:-10])
    _assert_error(tmp_path, "train-images-idx3-ubyte", "truncated")


def test_idx_truncated_header(tmp_path: Path) -> None:
    _corrupt(tmp_path, "train-images-idx3-ubyte", lambda b: b[:9])
    _assert_error(tmp_path, "train-images-idx3-ubyte", "truncated")


def test_idx_trailing_bytes(tmp_path: Path) -> None:
    _corrupt(tmp_path, "t10k-labels-idx1-ubyte", lambda b: b + b"\x00\x00")
    _assert_error(tmp_path, "t10k-labels-idx1-ubyte", "trailing")


def test_idx_truncated_gzip(tmp_path: Path) -> None:
    make_idx(tmp_path, gz=True)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-30])
    _assert_error(tmp_path, "train-images-idx3-ubyte.gz")


def test_idx_wrong_image_size(tmp_path: Path) -> None:
    make_idx(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((N_TRAIN, 32, 32), np.uint8))
    _assert_error(tmp_path, "train-images-idx3-ubyte", "28x28")


def test_idx_count_mismatch(tmp_path: Path) -> None:
    make_idx(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(N_TRAIN - 1, np.uint8))
    _assert_error(tmp_path, "train-labels-idx1-ubyte", str(N_TRAIN - 1), str(N_TRAIN))


def test_idx_label_out_of_range(tmp_path: Path) -> None:
    make_idx(tmp_path)
    labels = np.zeros(N_TEST, np.uint8)
    labels[3] = 10
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    _assert_error(tmp_path, "t10k-labels-idx1-ubyte", "0..9", "10")


# ---------------------------------------------------------------------- CIFAR-10


def make_cifar(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write tiny CIFAR-10 batches (4 images per train batch, 5 test) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    out = {}
    for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH):
        n = N_TEST if name == CIFAR10_TEST_BATCH else N_TRAIN // 5
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n)
        write_cifar_batch(folder / name, data, labels.tolist())
        out[name] = (data, labels)
    return out


def _check_cifar(root: Path, batches: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    x_tr, y_tr, x_te, y_te = load_cifar10(root)
    assert x_tr.dtype == np.float32 and x_tr.shape == (N_TRAIN, 3072)
    assert x_te.dtype == np.float32 and x_te.shape == (N_TEST, 3072)
    assert y_tr.dtype == np.int64 and y_te.dtype == np.int64
    assert 0.0 <= x_tr.min() and x_tr.max() <= 1.0
    train_data = np.concatenate([batches[n][0] for n in CIFAR10_TRAIN_BATCHES])
    train_labels = np.concatenate([batches[n][1] for n in CIFAR10_TRAIN_BATCHES])
    np.testing.assert_array_equal(np.rint(x_tr * 255).astype(np.uint8), train_data)
    np.testing.assert_array_equal(y_tr, train_labels)
    np.testing.assert_array_equal(np.rint(x_te * 255).astype(np.uint8), batches["test_batch"][0])
    np.testing.assert_array_equal(y_te, batches["test_batch"][1])


def test_cifar_roundtrip(tmp_path: Path) -> None:
    _check_cifar(tmp_path, make_cifar(tmp_path))


def test_cifar_roundtrip_subfolder(tmp_path: Path) -> None:
    _check_cifar(tmp_path, make_cifar(tmp_path / "cifar-10-batches-py"))


def test_cifar_batch_is_py2_style_dict(tmp_path: Path) -> None:
    write_cifar_batch(tmp_path / "b", np.zeros((2, 3072), np.uint8), [1, 2])
    with open(tmp_path / "b", "rb") as fh:
        d = pickle.load(fh, encoding="bytes")  # our own fixture: trusted
    assert d[b"labels"] == [1, 2] and d[b"data"].shape == (2, 3072)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_cifar_accepts_numpy_pickle_protocols(tmp_path: Path, protocol: int) -> None:
    batches = make_cifar(tmp_path)
    for name, (data, labels) in batches.items():
        with open(tmp_path / name, "wb") as fh:
            pickle.dump({"data": data, "labels": labels.tolist()}, fh, protocol=protocol)
    _check_cifar(tmp_path, batches)


def test_cifar_missing_batches_named(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    (tmp_path / "test_batch").unlink()
    with pytest.raises(DataFileError) as ei:
        load_cifar10(tmp_path)
    msg = str(ei.value)
    assert "data_batch_3" in msg and "test_batch" in msg and str(tmp_path) in msg
    assert "data_batch_1" not in msg


def test_cifar_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as ei:
        load_cifar10(tmp_path)
    msg = str(ei.value)
    assert all(n in msg for n in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH))


def test_cifar_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="nope"):
        load_cifar10(tmp_path / "nope")


def _cifar_error(tmp_path: Path, name: str, *fragments: str) -> None:
    with pytest.raises(DataFileError) as ei:
        load_cifar10(tmp_path)
    msg = str(ei.value)
    assert name in msg
    for frag in fragments:
        assert frag in msg


def test_cifar_wrong_columns(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    write_cifar_batch(tmp_path / "data_batch_2", np.zeros((4, 3000), np.uint8), [0] * 4)
    _cifar_error(tmp_path, "data_batch_2", "3072")


def test_cifar_label_out_of_range(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    write_cifar_batch(tmp_path / "test_batch", np.zeros((5, 3072), np.uint8), [0, 1, 2, 11, 3])
    _cifar_error(tmp_path, "test_batch", "0..9", "11")


def test_cifar_label_count_mismatch(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    write_cifar_batch(tmp_path / "data_batch_5", np.zeros((4, 3072), np.uint8), [0, 1, 2])
    _cifar_error(tmp_path, "data_batch_5", "3 labels", "4 images")


def test_cifar_missing_key(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    with open(tmp_path / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8)}, fh, protocol=2)
    _cifar_error(tmp_path, "data_batch_1", "labels")


def test_cifar_not_a_pickle(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    (tmp_path / "data_batch_4").write_bytes(b"this is not a pickle")
    _cifar_error(tmp_path, "data_batch_4")


def test_cifar_truncated_pickle(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    p = tmp_path / "data_batch_4"
    p.write_bytes(p.read_bytes()[:100])
    _cifar_error(tmp_path, "data_batch_4")


class _Evil:
    """Pickles to a call of os.system with a command that creates a marker file."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def test_cifar_malicious_pickle_refused(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    marker = tmp_path / "pwned"
    payload = {b"data": _Evil(f"touch {marker}"), b"labels": [0]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataFileError) as ei:
        load_cifar10(tmp_path)
    msg = str(ei.value)
    assert "refuses to unpickle" in msg and "system" in msg and "data_batch_1" in msg
    assert not marker.exists()


@pytest.mark.parametrize(
    "target", [("builtins", "eval"), ("subprocess", "Popen"), ("numpy", "load")]
)
def test_cifar_other_globals_refused(tmp_path: Path, target: tuple[str, str]) -> None:
    make_cifar(tmp_path)
    module, name = target
    # protocol-0 GLOBAL opcode referencing the callable, then an empty-tuple REDUCE
    payload = f"c{module}\n{name}\n(tR.".encode()
    (tmp_path / "test_batch").write_bytes(payload)
    with pytest.raises(DataFileError, match=f"refuses to unpickle {module}.{name}"):
        load_cifar10(tmp_path)


def test_cifar_object_array_refused(tmp_path: Path) -> None:
    """An object-dtype array would need further globals for its items, or be non-uint8."""
    make_cifar(tmp_path)
    data = np.empty((4, 3072), dtype=object)
    data[:] = 0
    with open(tmp_path / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": data, b"labels": [0] * 4}, fh, protocol=2)
    _cifar_error(tmp_path, "data_batch_1", "uint8")
