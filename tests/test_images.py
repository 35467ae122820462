"""Image networks (issue 23): `cnn2d` (Nakkiran et al.'s standard CNN) and `resnet18`
(pre-activation, width k): their parameter counts, any image size, images reaching them as
(N, C, H, W) while the MLPs still read flat inputs, a 2-D model on a non-image set refused, seeds
and width buckets stacked with grouped convolutions (member k follows its solo run), the norms of
2-D convolutions, and the baselines on images."""

import numpy as np
import pytest
import torch
from torch import nn

from gengap_tui.config import ConfigError, build
from gengap_tui.core import norms
from gengap_tui.core.data import Dataset
from gengap_tui.core.models import (CNN2D, MLP, PreActResNet18, Stacked2D, build_model, conv_format, count_params,
                                    width_cost)
from gengap_tui.core.multi import MultiTrainer
from gengap_tui.core.trainer import Trainer

SHAPE = (3, 8, 8)


def image_set(n_train=48, n_val=32, n_test=32, shape=SHAPE, classes=4, seed=0) -> Dataset:
    """A tiny seeded image set: each class a different mean image plus noise (learnable)."""
    rng = np.random.default_rng(seed)
    D = int(np.prod(shape))
    means = rng.standard_normal((classes, D)).astype(np.float32)

    def split(n):
        y = np.arange(n) % classes
        x = means[y] + 0.8 * rng.standard_normal((n, D)).astype(np.float32)
        return x.astype(np.float32), y.astype(np.int64)

    (xtr, ytr), (xv, yv), (xte, yte) = split(n_train), split(n_val), split(n_test)
    return Dataset(name="cifar10", x_train=xtr, y_train=ytr.copy(), y_train_clean=ytr,
                   changed=np.zeros(n_train, bool), x_val=xv, y_val=yv, x_test=xte, y_test=yte,
                   num_classes=classes, image_shape=shape)


def img_cfg(kind="cnn2d", *overrides):
    base = ["data.dataset=cifar10", "data.path=/nonexistent", f"model.kind={kind}", "model.width=2",
            "optim.epochs=3", "optim.batch_size=16", "optim.lr=0.01", "device=cpu", "run.threads=1",
            "early_stopping.enabled=false"]
    return build({"name": "img"}, base + list(overrides))


# ------------------------------------------------------------------------------------ the networks
@pytest.mark.parametrize("k, cnn, resnet", [(64, 1_558_026, 11_171_146), (12, 56_266, 394_822)])
def test_parameter_counts_on_cifar_shapes(k, cnn, resnet):
    assert count_params(CNN2D((3, 32, 32), 10, k)) == cnn
    assert count_params(PreActResNet18((3, 32, 32), 10, k)) == resnet


@pytest.mark.parametrize("cls", [CNN2D, PreActResNet18])
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32), (2, 5, 7)])
def test_any_image_size_and_channels(cls, shape):
    m = cls(shape, 7, 3)
    x = torch.randn(4, *shape)
    assert m(x).shape == (4, 7)
    # flat inputs (C*H*W per row) are the same images
    torch.testing.assert_close(m.eval()(x.flatten(1)), m(x))


def test_cnn2d_pools_down_to_one_pixel_with_adaptive_last_pool():
    m = CNN2D((1, 28, 28), 10, 4)
    pools = [type(p).__name__ for p in m.trunk if "Pool" in type(p).__name__]
    assert pools == ["MaxPool2d", "MaxPool2d", "MaxPool2d", "AdaptiveMaxPool2d"]
    feats = m.trunk(m.stem(torch.randn(2, 1, 28, 28)))
    assert feats.shape == (2, 32, 1, 1)  # 28 -> 14 -> 7 -> 3, then 3x3 -> 1


def test_image_model_on_a_non_image_set_is_refused():
    for ds in ("mnist1d", "moons"):
        with pytest.raises(ConfigError) as exc:
            build({}, [f"data.dataset={ds}", "model.kind=cnn2d"])
        msg = str(exc.value)
        assert "model.kind" in msg and "'cnn2d'" in msg and "cifar10" in msg and "mnist" in msg, msg
    with pytest.raises(ValueError, match="model.kind: 'resnet18' needs an image data set"):
        build_model(img_cfg("resnet18"), 64, 10, None)


# ------------------------------------------------------------------------------------ the image path
def test_images_reach_2d_models_as_nchw_and_mlps_flat():
    ds = image_set()
    tr = Trainer(img_cfg("cnn2d"), "cpu", ds)
    assert tr.x_train.shape == (48, *SHAPE)
    xb, yb = tr.batches.take(torch.arange(5))
    assert xb.shape == (5, *SHAPE) and yb.shape == (5,)
    # channels_last is for CUDA (tests/test_gpu.py); a CPU keeps NCHW
    assert conv_format("cuda") == torch.channels_last and conv_format("cpu") == torch.contiguous_format
    # (the Dataset made of flat float rows with an image_shape holds them as images, mean 0, std 1)
    torch.testing.assert_close(tr.x_train[:].flatten(1), torch.from_numpy(ds.x_train).flatten(1))
    s = tr.run()
    assert s["status"] == "completed" and s["n_params"] == count_params(CNN2D(SHAPE, 4, 2))
    # an MLP on the same image set reads it flat, as before
    mlp = Trainer(img_cfg("mlp", "model.width=16"), "cpu", ds)
    assert mlp.x_train.shape == (48, 3 * 8 * 8) and isinstance(mlp.model, MLP)
    assert mlp.run()["status"] == "completed"


def test_cnn2d_learns_a_tiny_image_set():
    ds = image_set(n_train=96)
    rows = []
    s = Trainer(img_cfg("cnn2d", "model.width=4", "optim.epochs=15"), "cpu", ds).run(on_epoch=rows.append)
    assert rows[-1]["train_err"] < rows[0]["train_err"] and rows[-1]["train_err"] <= 0.05, rows[-1]
    assert s["test_err"] < 0.5  # 4 classes: chance is 0.75


# ------------------------------------------------------------------------------------ stacked = solo
@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: with two, oneDNN sums a grouped convolution in another order than the
    solo one, and the tiny ResNet (BatchNorm over 16 one-pixel maps in its last stage) amplifies
    that rounding ~10x per epoch (5e-5 after 2 epochs, 8e-4 after 4, with or without padding);
    with one, stacked and solo agree to 1e-7 (measured)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _member_rows(tr):
    out = []
    tr.run(on_epoch=lambda row: out.append({k: list(v) for k, v in tr.last_members.items()}))
    return out


# SGD: with Adam the convolution biases before a BatchNorm (their true gradient is zero) take
# steps of the learning rate's size from rounding noise, so stacked and solo runs agree to ~1e-3
# there, not ~1e-6
SGD = ("optim.optimizer=sgd", "regularization.weight_decay=0.001")


@pytest.mark.parametrize("kind", ["cnn2d", "resnet18"])
def test_stacked_seeds_follow_their_solo_runs(kind):
    ds = image_set()
    cfg = img_cfg(kind, "run.seeds=3", *SGD)
    multi = MultiTrainer(cfg, "cpu", ds, load_fn=lambda c: ds)
    assert isinstance(multi.model, Stacked2D) and len(multi.model.groups) == 1
    per = _member_rows(multi)
    for k in range(3):
        solo_rows = []
        solo = Trainer(img_cfg(kind, f"seed={k}", *SGD), "cpu", ds)
        solo.run(on_epoch=solo_rows.append)
        for e, row in enumerate(solo_rows):
            for key in ("train_loss", "val_loss", "weight_norm"):
                assert per[e][key][k] == pytest.approx(row[key], rel=1e-5, abs=1e-6), (k, e, key)
        # its weights, unstacked, are the solo run's
        sd = multi.member_state_dict(k)
        for name, v in solo.model.state_dict().items():
            torch.testing.assert_close(sd[name].float(), v.float(), rtol=1e-4, atol=1e-5, msg=f"{k} {name}")


@pytest.mark.parametrize("kind", ["cnn2d", "resnet18"])
def test_width_bucket_members_follow_their_solo_runs(kind):
    ds = image_set()
    widths = [1, 2, 3]
    multi = MultiTrainer(img_cfg(kind, *SGD), "cpu", ds, members=[(0, w) for w in widths], max_waste=100.0,
                         load_fn=lambda c: ds)
    assert len(multi.model.groups) == 1 and multi.model.groups[0].G == 3 and multi.model.padded_fraction() > 1
    per = _member_rows(multi)
    for g, w in enumerate(widths):
        solo_rows = []
        Trainer(img_cfg(kind, f"model.width={w}", *SGD), "cpu", ds).run(on_epoch=solo_rows.append)
        for e, row in enumerate(solo_rows):
            assert per[e]["train_loss"][g] == pytest.approx(row["train_loss"], rel=1e-5, abs=1e-6), (g, e)
            assert per[e]["spectral_norm_product"][g] == pytest.approx(row["spectral_norm_product"], rel=1e-3)


@pytest.mark.parametrize("kind", ["cnn2d", "resnet18"])
@pytest.mark.parametrize("opt", ["optim.optimizer=adamw", "optim.optimizer=sgd"])
def test_padded_channels_stay_exactly_zero(kind, opt):
    ds = image_set()
    widths = [1, 2, 4]
    cfg = img_cfg(kind, opt, "regularization.weight_decay=0.01", "regularization.l1=0.0001", "optim.epochs=2")
    multi = MultiTrainer(cfg, "cpu", ds, members=[(0, w) for w in widths], max_waste=100.0, load_fn=lambda c: ds)
    grp = multi.model.groups[0]
    assert multi.run()["status"] == "completed"
    for conv in grp.conv_weights():
        per_out = conv.shape[0] // 3
        for g, w in enumerate(widths[:-1]):
            block = conv[g * per_out : (g + 1) * per_out]
            real_out = per_out * w // widths[-1]
            assert torch.count_nonzero(block[real_out:]) == 0
            if conv.shape[1] != SHAPE[0]:  # past the stem: padded input channels too
                assert torch.count_nonzero(block[:, conv.shape[1] * w // widths[-1]:]) == 0
    for bn in (m for m in grp.modules() if isinstance(m, nn.BatchNorm2d)):
        c = bn.num_features // 3
        for g, w in enumerate(widths[:-1]):
            pad = slice(g * c + c * w // widths[-1], (g + 1) * c)
            assert torch.count_nonzero(bn.weight[pad]) == 0 and torch.count_nonzero(bn.bias[pad]) == 0
    F_max = grp.head_weight.shape[1]
    for g, w in enumerate(widths[:-1]):
        assert torch.count_nonzero(grp.head_weight[g, F_max * w // widths[-1]:]) == 0
    # and the weights stay padded-zero as the members see them: member g is its own solo-shaped model
    for g, w in enumerate(widths):
        assert multi.model.member(g).stem.out_channels == w


def test_width_sweep_buckets_by_convolution_cost():
    cost = width_cost("cnn2d", 0, 0, 10, (3, 32, 32))
    assert cost(64) / cost(32) == pytest.approx(4, rel=0.05)  # convolutions: quadratic in the width
    ds = image_set()
    widths = [1, 2, 4, 8, 16]
    multi = MultiTrainer(img_cfg("cnn2d"), "cpu", ds, members=[(0, w) for w in widths], load_fn=lambda c: ds)
    assert len(multi.model.groups) > 1 and multi.model.padded_fraction() <= 1.25
    assert multi.member_params == [count_params(CNN2D(SHAPE, 4, w)) for w in widths]


# ------------------------------------------------------------------------------------ norms, baselines
def test_norms_unfold_2d_kernels():
    torch.manual_seed(0)
    m = CNN2D(SHAPE, 4, 3)
    got = norms.exact(m)
    mats = [mod.weight.detach().double().reshape(mod.weight.shape[0], -1) for mod in m.modules()
            if isinstance(mod, (nn.Conv2d, nn.Linear))]
    assert mats[1].shape == (6, 3 * 9)  # out x in*kh*kw
    assert got["weight_norm"][0] == pytest.approx(float(torch.sqrt(sum(w.square().sum() for w in mats))))
    prod = 1.0
    for w in mats:
        prod *= float(torch.linalg.matrix_norm(w, ord=2))
    assert got["spectral_norm_product"][0] == pytest.approx(prod, rel=1e-9)
    tracked = norms.NormTracker(m).measure()
    assert tracked["spectral_norm_product"][0] == pytest.approx(prod, rel=1e-4)


def test_knn_and_ntk_baselines_on_images_say_what_they_are():
    ds = image_set()
    events = []
    s = Trainer(img_cfg("cnn2d", "baselines.knn=true", "baselines.ntk=true", "optim.epochs=1"), "cpu", ds).run(
        on_event=events.append)
    assert s["baseline_knn_train_err"] == 0.0 and 0 <= s["baseline_knn_val_err"] <= 1
    assert 0 <= s["baseline_ntk_test_err"] <= 1
    notes = [e["message"] for e in events if e["event"] == "warning"]
    assert any("baselines.ntk" in n and "'cnn2d'" in n and "MLP" in n for n in notes), notes


# ------------------------------------------------------------------------------------ sweeps
def test_cnn2d_width_sweep_trains_together_on_cifar_files(tmp_path):
    import json

    from gengap_tui.core.datafiles import CIFAR10_TEST_BATCH, CIFAR10_TRAIN_BATCHES, write_cifar_batch
    from gengap_tui.core.sweep import Sweep

    rng = np.random.default_rng(0)
    for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH):
        write_cifar_batch(tmp_path / name, rng.integers(0, 256, (10, 3072), dtype=np.uint8), list(range(10)))
    cfg = build({"name": "img"}, ["data.dataset=cifar10", f"data.path={tmp_path}", "data.n_train=30", "data.n_val=10",
                                  "data.n_test=10", "model.kind=cnn2d", "optim.epochs=2", "optim.batch_size=8",
                                  "device=cpu", "run.seeds=2"])
    sw = Sweep(cfg, "model.width", [1, 2, 4])
    assert sw.together
    summary = sw.run(tmp_path / "sweep")
    assert summary["status"] == "completed"
    meta = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert meta["together"] and meta["buckets"] >= 1
    rows = [json.loads(line) for line in (tmp_path / "sweep" / "sweep.jsonl").read_text().splitlines()]
    assert [r["n_params"] for r in rows] == [count_params(CNN2D((3, 32, 32), 10, w)) for w in (1, 2, 4)]
    # a value's kept weights load into an ordinary CNN2D of its width
    state = torch.load(tmp_path / "sweep" / rows[1]["run_dir"] / "model.pt", weights_only=True)
    CNN2D((3, 32, 32), 10, 2).load_state_dict(state)

