"""CUDA checks of the image networks (skipped without a CUDA device; `pytest -m gpu`): images
reach the convolutions channels_last, an epoch of cnn2d / resnet18 (solo, stacked seeds, a padded
width bucket) has no host sync, graphed and eager runs agree, and stacked seed k follows its solo
run on the GPU too. Tiny images (3x8x8) and widths: seconds each."""

from __future__ import annotations

import pytest
import torch

from gengap_tui.core.multi import MultiTrainer
from gengap_tui.core.trainer import Trainer
from test_gpu import _no_sync_epochs
from test_images import SGD, image_set, img_cfg

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

KINDS = ["cnn2d", "resnet18"]


@pytest.mark.parametrize("kind", KINDS)
def test_images_are_channels_last_on_cuda(kind):
    tr = Trainer(img_cfg(kind), "cuda", image_set())
    assert tr.x_train.is_contiguous(memory_format=torch.channels_last)
    assert tr.model.stem.weight.is_contiguous(memory_format=torch.channels_last)
    xb, _ = tr.batches.take(torch.arange(4, device="cuda"))
    assert xb.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("graphs", ["auto", "off"])
@pytest.mark.parametrize("members", [None, [(0, 2), (1, 2)], [(0, 1), (0, 2), (0, 4)]], ids=["solo", "seeds", "widths"])
@pytest.mark.parametrize("kind", KINDS)
def test_image_epoch_has_no_host_sync(kind, members, graphs):
    ds = image_set()
    cfg = img_cfg(kind, f"run.cuda_graphs={graphs}", "device=cuda")
    if members is None:
        tr = Trainer(cfg, "cuda", ds)
    else:
        tr = MultiTrainer(cfg, "cuda", ds, members=members, max_waste=100.0, load_fn=lambda c: ds)
    _no_sync_epochs(tr)
    assert tr._graphs is None or not tr._graphs.failed, tr._graphs.failed


@pytest.mark.parametrize("kind", KINDS)
def test_image_graphed_run_matches_eager(kind):
    ds = image_set()
    rows = {}
    for graphs in ("auto", "off"):
        rows[graphs] = []
        Trainer(img_cfg(kind, *SGD, "optim.epochs=5", f"run.cuda_graphs={graphs}", "device=cuda"), "cuda",
                ds).run(on_epoch=rows[graphs].append)
    for a, b in zip(rows["off"], rows["auto"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=2e-3), a["epoch"]


@pytest.mark.parametrize("kind", KINDS)
def test_stacked_image_seeds_follow_their_solo_runs_on_cuda(kind):
    """Grouped and plain cuDNN convolutions (TF32 where the card has it) round differently: the
    members agree with their solo runs to ~1e-3 after 3 epochs of SGD, not to the last bit."""
    ds = image_set()
    multi = MultiTrainer(img_cfg(kind, "run.seeds=3", *SGD, "device=cuda"), "cuda", ds, load_fn=lambda c: ds)
    per = []
    multi.run(on_epoch=lambda row: per.append(list(multi.last_members["train_loss"])))
    for k in range(3):
        rows = []
        Trainer(img_cfg(kind, f"seed={k}", *SGD, "device=cuda"), "cuda", ds).run(on_epoch=rows.append)
        for e, row in enumerate(rows):
            assert per[e][k] == pytest.approx(row["train_loss"], rel=3e-3), (k, e)
