"""CUDA checks of the image path (skipped without a CUDA device; `pytest -m gpu`): an epoch with
augmentation on uint8 images makes no host sync (the draws are made before it, into a buffer the
graph reads), the graphed run equals the eager one, the batches are channels_last, and the pixels
stay uint8 on the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gengap_tui.config import build
from gengap_tui.core.datafiles import CIFAR10_TEST_BATCH, CIFAR10_TRAIN_BATCHES, write_cifar_batch
from gengap_tui.core.multi import MultiTrainer
from gengap_tui.core.trainer import Trainer

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture
def cifar(tmp_path):
    rng = np.random.default_rng(0)
    for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH):
        n = 100
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        write_cifar_batch(tmp_path / name, x, rng.integers(0, 10, n))
    return tmp_path


def _cfg(path, graphs: str, *extra):
    return build({"name": "t"}, ["data.dataset=cifar10", f"data.path={path}", "data.n_train=400", "data.n_val=100",
                                 "data.n_test=100", "model.kind=cnn2d", "model.width=8", "optim.epochs=5",
                                 "optim.batch_size=64", "regularization.augment=crop-flip",
                                 "early_stopping.enabled=false", "device=cuda", f"run.cuda_graphs={graphs}", *extra])


@pytest.mark.parametrize("seeds", [1, 2])
def test_augmented_epoch_has_no_host_sync(cifar, seeds):
    cls = MultiTrainer if seeds > 1 else Trainer
    tr = cls(_cfg(cifar, "auto", f"run.seeds={seeds}"))
    assert tr.x_train.pixels.dtype == torch.uint8 and tr.x_train.pixels.is_cuda
    for _ in range(2):  # warm-up and capture
        tr._train_epoch(tr.gen)
        tr.evaluate()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        # (the draws are made in _train_epoch before the graph replays: drawing syncs nothing either)
        tr._train_epoch(tr.gen)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    assert tr._graphs is not None and tr._graphs.replays >= 1


def test_graphed_augmented_run_matches_eager(cifar):
    rows = {}
    for graphs in ("auto", "off"):
        rows[graphs] = []
        Trainer(_cfg(cifar, graphs)).run(on_epoch=rows[graphs].append)
    for a, b in zip(rows["off"], rows["auto"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=2e-3, abs=2e-3)
        assert b["val_err"] == pytest.approx(a["val_err"], abs=0.02)


def test_cuda_batches_are_channels_last(cifar):
    tr = Trainer(_cfg(cifar, "off"))
    tr._draw_augment(tr.gen)
    xb, _ = tr.batches.take(torch.arange(16, device="cuda"))
    assert xb.is_contiguous(memory_format=torch.channels_last) and xb.shape == (16, 3, 32, 32)
