"""CUDA checks of the trainers (skipped without a CUDA device; run them with `pytest -m gpu`).

- No host sync inside an epoch's training pass: `_train_epoch` runs under
  `torch.cuda.set_sync_debug_mode("error")`, which makes any synchronizing CUDA call raise.
- The one sync per epoch is the metric copy at the end of `evaluate()` (`torch.stack(vals).tolist()`):
  under sync-debug "warn" an `evaluate()` warns exactly once, and a whole `run()` of 4 epochs
  warns exactly 2 more times than one of 2 epochs (setup and the final test cancel out).
- A CUDA run matches a CPU run: the initial evaluation within 1e-5 and the first epochs' losses
  within 1e-4. The runs use full-batch SGD (`batch_size = n_train`), because the CUDA generator
  draws another data order than the CPU one for the same seed; with one batch per epoch the order
  changes only the summation order.

Each test takes seconds on a GPU (500 training examples, width 64).
"""

from __future__ import annotations

import contextlib
import math
import warnings

import pytest
import torch

from gengap_tui.core.multi import MultiTrainer
from gengap_tui.core.trainer import Trainer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SYNC_MSG = "synchroniz"  # torch: "called a synchronizing CUDA operation"

# settings that take other paths through the epoch: label-noise tracking, L1 (a Python sum of
# tensors), input noise and dropout (device RNG), decoupled SGD decay (`_foreach_mul_`)
VARIANTS = {
    "adam": ["noise.label_noise=0.2"],
    "sgd-regularized": ["noise.label_noise=0.2", "optim.optimizer=sgd", "optim.momentum=0.9",
                        "regularization.weight_decay=0.001", "regularization.decoupled=true",
                        "regularization.l1=0.00001", "regularization.input_noise=0.05",
                        "regularization.dropout=0.1"],
}


@contextlib.contextmanager
def sync_debug(mode: str):
    """Sync-debug `mode` between two device synchronizations (so queued work from before cannot
    be blamed, and errors raised by the region surface inside it)."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@contextlib.contextmanager
def count_syncs():
    """Counts synchronizing CUDA calls in the region (sync-debug "warn")."""
    seen: list[int] = [0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with sync_debug("warn"):
            yield seen
    seen[0] = sum(SYNC_MSG in str(w.message) for w in caught)


def test_sync_debug_mode_is_live():
    """The checks below would pass vacuously if the debug mode did nothing: prove it catches a
    plain `.item()` (error mode) and counts one `.tolist()` (warn mode)."""
    x = torch.arange(4.0, device="cuda")
    with pytest.raises(RuntimeError, match=SYNC_MSG):
        with sync_debug("error"):
            x.sum().item()
    with count_syncs() as n:
        x.tolist()
    assert n[0] == 1
    with count_syncs() as n:
        (x * 2).sum()  # queued device work alone never syncs
    assert n[0] == 0


def _cuda_trainer(cfg_factory, variant: str, seeds: int = 1, **kw) -> Trainer:
    cfg = cfg_factory(*VARIANTS[variant], f"run.seeds={seeds}", "early_stopping.enabled=false")
    if seeds > 1 or "members" in kw:
        return MultiTrainer(cfg, "cuda", **kw)
    return Trainer(cfg, "cuda")


def _no_sync_epochs(tr: Trainer, epochs: int = 2) -> None:
    tr._train_epoch(tr.gen)  # warm-up: lazy initialisations (cuBLAS handles, optimizer state)
    tr.evaluate()
    for _ in range(epochs):
        with sync_debug("error"):
            tr._train_epoch(tr.gen)
        tr.evaluate()  # the epoch's one sync, outside the checked region
    m = tr.evaluate()
    assert math.isfinite(m["train_loss"]) and math.isfinite(m["val_loss"])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_trainer_epoch_has_no_host_sync(cfg_factory, variant):
    _no_sync_epochs(_cuda_trainer(cfg_factory, variant))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_stacked_seeds_epoch_has_no_host_sync(cfg_factory, variant):
    _no_sync_epochs(_cuda_trainer(cfg_factory, variant, seeds=3))


def test_grouped_sweep_epoch_has_no_host_sync(cfg_factory):
    """The width sweep's model: several buckets, padded and masked members, two seeds."""
    members = [(s, w) for w in (2, 3, 8, 16, 64) for s in (0, 1)]
    tr = _cuda_trainer(cfg_factory, "adam", members=members, max_waste=0.5)
    assert len(tr.model.buckets) > 1 and tr.model.padded_fraction() > 1.0
    _no_sync_epochs(tr)


@pytest.mark.parametrize("seeds", [1, 3])
def test_evaluate_syncs_exactly_once(cfg_factory, seeds):
    tr = _cuda_trainer(cfg_factory, "adam", seeds=seeds)
    tr.evaluate()  # warm-up
    with count_syncs() as n:
        m = tr.evaluate()
    assert n[0] == 1, f"evaluate() synced {n[0]} times, expected the one metric copy"
    assert "train_clean_err" in m and "noisy_memorized" in m


@pytest.mark.parametrize("checkpoints", [False, True], ids=["plain", "checkpointing"])
@pytest.mark.parametrize("seeds", [1, 3])
def test_run_syncs_once_per_epoch(cfg_factory, seeds, checkpoints):
    """Whole `run()`s (on_epoch callback, restore-best snapshots, final test included): 4 epochs
    cost exactly 2 syncs more than 2 epochs. `checkpointing`: as the CLI and the worker run it, with
    `on_checkpoint`, which captures a resumable state every epoch (saved here only at the end)."""
    counts = {}
    kw = {"on_checkpoint": lambda state: None, "checkpoint_every_s": 1e9} if checkpoints else {}
    for epochs in (2, 4):
        cfg = cfg_factory(*VARIANTS["adam"], f"run.seeds={seeds}", f"optim.epochs={epochs}",
                          "early_stopping.enabled=true", "early_stopping.patience=100")
        tr = MultiTrainer(cfg, "cuda") if seeds > 1 else Trainer(cfg, "cuda")
        rows = []
        with count_syncs() as n:
            s = tr.run(on_epoch=rows.append, **kw)
        assert s["status"] == "completed" and s["epochs_run"] == epochs and len(rows) == epochs
        assert tr.device.type == "cuda"
        counts[epochs] = n[0]
    assert counts[4] - counts[2] == 2, f"syncs per run: {counts} (expected one per epoch)"


def _full_batch_cfg(cfg_factory, seeds: int = 1):
    return cfg_factory("noise.label_noise=0.2", "optim.optimizer=sgd", "optim.lr=0.05", "optim.momentum=0.9",
                       "optim.batch_size=500", "optim.epochs=3", "early_stopping.enabled=false",
                       f"run.seeds={seeds}")


def test_cuda_run_matches_cpu_run(cfg_factory):
    cfg = _full_batch_cfg(cfg_factory)
    first = {}
    rows = {}
    for dev in ("cpu", "cuda"):
        tr = Trainer(cfg, dev)
        first[dev] = tr.evaluate()
        rows[dev] = []
        s = tr.run(on_epoch=rows[dev].append)
        assert s["status"] == "completed"
    for k in ("train_loss", "val_loss"):
        assert first["cuda"][k] == pytest.approx(first["cpu"][k], abs=1e-5), k
    for a, b in zip(rows["cpu"], rows["cuda"]):
        for k in ("train_loss", "val_loss"):
            assert b[k] == pytest.approx(a[k], abs=1e-4), (a["epoch"], k)
        for k in ("train_err", "val_err", "train_clean_err"):
            assert b[k] == pytest.approx(a[k], abs=0.005), (a["epoch"], k)  # <= 2 of 500 examples


def test_cuda_stacked_seeds_match_cpu(cfg_factory):
    cfg = _full_batch_cfg(cfg_factory, seeds=3)
    per: dict[str, list[dict]] = {}
    for dev in ("cpu", "cuda"):
        tr = MultiTrainer(cfg, dev)
        per[dev] = []
        s = tr.run(on_epoch=lambda row, tr=tr, out=per[dev]: out.append(dict(tr.last_members)))
        assert s["status"] == "completed"
    for a, b in zip(per["cpu"], per["cuda"]):
        for k in ("train_loss", "val_loss"):
            assert b[k] == pytest.approx(a[k], abs=1e-4), k
