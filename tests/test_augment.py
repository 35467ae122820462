"""Images on the device and their augmentation (core/images.py, core/augment.py): crops stay
within the padding, the same seed gives the same augmented batches, and nothing augmented
reaches evaluation or the train-split metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gengap_tui.config import build
from gengap_tui.core import augment, data
from gengap_tui.core.datafiles import CIFAR10_TEST_BATCH, CIFAR10_TRAIN_BATCHES, write_cifar_batch
from gengap_tui.core.images import DeviceImages
from gengap_tui.core.models import conv_format
from gengap_tui.core.multi import MultiTrainer
from gengap_tui.core.trainer import Trainer


def _reference(x: np.ndarray, d: np.ndarray, pad: int) -> np.ndarray:
    """What torchvision's RandomCrop(padding=pad) then RandomHorizontalFlip do, in numpy."""
    out = np.empty_like(x)
    H, W = x.shape[-2:]
    for i, (dy, dx, flip) in enumerate(d):
        padded = np.pad(x[i], ((0, 0), (pad, pad), (pad, pad)))
        crop = padded[:, dy:dy + H, dx:dx + W]
        out[i] = crop[:, :, ::-1] if flip else crop
    return out


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("mode", ["crop", "flip", "crop-flip"])
def test_augmented_images_are_padded_crops_and_flips(mode, channels_last):
    pad = 2
    rng = np.random.default_rng(0)
    x = rng.integers(1, 256, (300, 3, 6, 5), dtype=np.uint8)  # no zero pixel: a zero is padding
    gen = torch.Generator().manual_seed(3)
    d = augment.draw(mode, pad, len(x), gen, "cpu")
    out = augment.apply(torch.from_numpy(x), d, pad, channels_last=channels_last)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    if channels_last:
        assert out.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(out.numpy(), _reference(x, d.numpy(), pad))
    shifts = d[:, :2].numpy() - pad
    if "crop" in mode:  # every shift of the padding is drawn, and none beyond it
        assert set(shifts.ravel()) == set(range(-pad, pad + 1))
        # an image shifted by (dy, dx) has exactly |dy| zero rows and |dx| zero columns
        on = out.numpy() != 0
        for i in range(len(x)):
            assert (~on[i].any(axis=(0, 2))).sum() == abs(shifts[i, 0]) <= pad
            assert (~on[i].any(axis=(0, 1))).sum() == abs(shifts[i, 1]) <= pad
    else:
        assert not shifts.any()
    flips = d[:, 2].numpy()
    assert (flips.any() and not flips.all()) if "flip" in mode else not flips.any()


def test_apply_takes_stacked_batches():
    """A stack's batch `[G, B, C, H, W]` with its draws `[G, B, 3]`: each image by its own draw."""
    x = torch.randint(1, 255, (2, 7, 1, 4, 4), dtype=torch.uint8)
    d = augment.draw("crop-flip", 1, 14, torch.Generator().manual_seed(0), "cpu").view(2, 7, 3)
    out = augment.apply(x, d, 1)
    flat = augment.apply(x.view(14, 1, 4, 4), d.view(14, 3), 1)
    assert out.shape == x.shape and torch.equal(out.view(14, 1, 4, 4), flat)


def test_device_images_normalize_per_channel_and_keep_uint8():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (50, 3, 4, 4), dtype=np.uint8)
    mean, std = data.channel_stats(x)
    ref = (x.astype(np.float64) - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1)
    assert np.allclose(ref.mean((0, 2, 3)), 0, atol=1e-5) and np.allclose(ref.std((0, 2, 3)), 1, atol=1e-4)
    flat = DeviceImages.from_numpy(x, mean, std, "cpu", "flat")
    img = DeviceImages.from_numpy(x, mean, std, "cpu", "image")
    assert flat.pixels.dtype == torch.uint8 and flat.nbytes == x.size  # stored once, one byte a pixel
    idx = torch.tensor([4, 0, 49])
    assert flat.shape == (50, 48) and img.shape == (50, 3, 4, 4)
    np.testing.assert_allclose(flat[idx].numpy(), ref[[4, 0, 49]].reshape(3, -1), atol=1e-5)
    b = img[idx]
    assert b.is_contiguous(memory_format=conv_format("cpu"))  # channels_last on CUDA
    np.testing.assert_allclose(b.numpy(), ref[[4, 0, 49]], atol=1e-5)
    np.testing.assert_allclose(flat[10:20].numpy(), ref[10:20].reshape(10, -1), atol=1e-5)
    assert flat[torch.zeros(2, 5, dtype=torch.long)].shape == (2, 5, 48)  # a stack's [G, B] index


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_normalizing_in_one_kernel_equals_the_two_step_formula(dtype, fmt):
    """`DeviceImages._finish` is one addcmul (px * scale + shift): within 1e-5 of the float copy,
    then multiply, then add it replaced, for uint8 and float32 pixels, NCHW and channels_last,
    float32 out in the pixels' memory format, and the stored pixels never written (a slice of
    float32 pixels is a view of them)."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (40, 3, 8, 8)).astype(np.uint8 if dtype == torch.uint8 else np.float32)
    mean, std = data.channel_stats(x)
    images = DeviceImages.from_numpy(x, mean, std, "cpu", "image")
    images.pixels = images.pixels.contiguous(memory_format=fmt)  # either layout, whatever the device wants
    images.format = fmt
    stored = images.pixels.clone()
    for idx in (torch.tensor([3, 0, 39, 3]), slice(5, 25)):
        px = images.pixels[idx]
        old = px.float() if px.dtype != torch.float32 else px.clone()
        old = old.mul_(images.scale).add_(images.shift)
        got = images[idx]
        assert got.dtype == torch.float32 and got.shape == old.shape
        assert got.is_contiguous(memory_format=fmt)
        assert (got - old).abs().max().item() <= 1e-5
        assert torch.equal(images.pixels, stored)
    images.layout = "flat"
    assert images[slice(0, 2)].shape == (2, 192)


def test_apply_makes_its_index_constants_once(monkeypatch):
    """augment.apply keeps its aranges and zero per (size, dtype, device): a batch makes none, and
    other sizes and dtypes get their own (the result equals the reference for each)."""
    pad, gen = 1, torch.Generator().manual_seed(5)
    for shape, dtype in (((9, 2, 5, 4), torch.uint8), ((9, 2, 5, 4), torch.float32), ((9, 1, 3, 6), torch.uint8)):
        x = torch.randint(1, 255, shape, generator=gen).to(dtype)
        d = augment.draw("crop-flip", pad, shape[0], gen, "cpu")
        augment.apply(x, d, pad)  # the first batch of this size and dtype makes them
        made = []
        for name in ("arange", "zeros"):
            real = getattr(torch, name)
            monkeypatch.setattr(torch, name, lambda *a, _real=real, _name=name, **k: made.append(_name) or _real(*a, **k))
        for channels_last in (False, True):
            out = augment.apply(x, d, pad, channels_last=channels_last)
            np.testing.assert_array_equal(out.numpy(), _reference(x.numpy(), d.numpy(), pad))
        monkeypatch.undo()
        assert made == []


def _cifar(folder, n_per_batch=40, n_test=50):
    rng = np.random.default_rng(2)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH):
        n = n_test if name == CIFAR10_TEST_BATCH else n_per_batch
        write_cifar_batch(folder / name, rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n))
    return folder


def _cfg(path, *extra):
    return build({"name": "t"}, ["data.dataset=cifar10", f"data.path={path}", "data.n_train=120", "data.n_val=40",
                                 "data.n_test=50", "model.width=32", "optim.epochs=2", "optim.batch_size=32",
                                 "regularization.augment=crop-flip", "device=cpu", "run.threads=1", *extra])


def _first_batch(tr):
    gen = tr.gen
    perm = tr._epoch_order(gen)
    tr._draw_augment(gen)
    return tr.batches.take(perm[:32])[0]


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_same_seed_same_augmented_batches(tmp_path):
    path = _cifar(tmp_path / "c")
    a, b, c = (Trainer(_cfg(path, f"seed={s}")) for s in (0, 0, 1))
    xa, xb, xc = (_first_batch(t) for t in (a, b, c))
    assert torch.equal(xa, xb)
    assert not torch.equal(xa, xc)
    # it is augmented: the same examples un-augmented differ
    perm = torch.randperm(len(a.y_fit), generator=torch.Generator().manual_seed(0))
    assert not torch.equal(xa, a.x_fit[perm[:32]])
    assert torch.equal(a.batches.take(perm[:32])[1], a.y_fit[perm[:32]])
    # and the next epoch draws anew
    d0 = b.batches.draws.clone()
    _first_batch(b)
    assert not torch.equal(d0, b.batches.draws)


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_augmentation_never_reaches_evaluation(tmp_path, monkeypatch):
    path = _cifar(tmp_path / "c")
    tr = Trainer(_cfg(path, "noise.label_noise=0.3", "baselines.knn=true"))
    calls = []
    real = augment.apply
    monkeypatch.setattr(augment, "apply", lambda *a, **k: calls.append(1) or real(*a, **k))
    tr._train_epoch(tr.gen)
    assert calls  # training took augmented batches
    calls.clear()
    m = tr.evaluate()
    tl, te = tr.evaluate_test()
    assert not calls
    # the train-split metrics are those of the stored images, normalized, un-augmented
    x = torch.from_numpy(tr.data.rows(tr.data.x_train))
    with torch.no_grad():
        tr.model.eval()
        out = tr.model(x)
    err = float((out.argmax(1) != tr.y_train).float().mean())
    loss = float(torch.nn.functional.cross_entropy(out, tr.y_train))
    assert m["train_err"] == pytest.approx(err, abs=1e-6) and m["train_loss"] == pytest.approx(loss, rel=1e-5)


def test_runs_with_augmentation_repeat_and_differ_from_plain(tmp_path):
    path = _cifar(tmp_path / "c")
    rows = [[], [], []]
    for r, extra in zip(rows, ([], [], ["regularization.augment=none"])):
        Trainer(_cfg(path, *extra)).run(on_epoch=lambda row, r=r: r.append(row["train_loss"]))
    assert rows[0] == rows[1]
    assert rows[0] != rows[2]


@pytest.mark.parametrize("kind", ["mlp", "cnn2d"])
def test_stacked_members_draw_their_solo_runs_crops(tmp_path, kind):
    path = _cifar(tmp_path / "c")
    extra = [f"model.kind={kind}"] + (["model.width=4"] if kind == "cnn2d" else [])
    multi = MultiTrainer(_cfg(path, "run.seeds=2", *extra))
    multi._train_epoch(None)
    for k in range(2):
        solo = Trainer(_cfg(path, f"seed={k}", *extra))
        solo._train_epoch(solo.gen)
        assert torch.equal(multi.batches.draws[k], solo.batches.draws)


def test_convnets_get_channels_last_images_and_mlps_flat_rows(tmp_path):
    path = _cifar(tmp_path / "c")
    conv = Trainer(_cfg(path, "model.kind=cnn2d", "model.width=4"))
    mlp = Trainer(_cfg(path))
    for tr in (conv, mlp):
        assert tr.x_train.pixels.dtype == torch.uint8  # stored once, as bytes
    idx = conv._epoch_order(conv.gen)[:16]
    conv._draw_augment(conv.gen)
    xb, _ = conv.batches.take(idx)
    assert xb.shape == (16, 3, 32, 32) and xb.dtype == torch.float32
    assert xb.is_contiguous(memory_format=conv_format(conv.device))  # channels_last on CUDA
    flat = mlp.x_train[idx]
    assert flat.shape == (16, 3072)
    np.testing.assert_allclose(flat.numpy(), mlp.data.rows(mlp.data.x_train[idx.numpy()]), atol=1e-5)
    assert conv.run()["status"] == "completed"


def test_augment_is_refused_on_data_that_are_not_images():
    from gengap_tui.config import ConfigError

    with pytest.raises(ConfigError, match="regularization.augment: 'crop' crops and flips images, but dataset "
                                          "'mnist1d' is not a set of images"):
        build({}, ["regularization.augment=crop"])
    with pytest.raises(ConfigError, match="regularization.crop_pad = 0"):
        build({}, ["regularization.crop_pad=0"])
