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


GRAPHS = ["auto", "off"]  # the epoch recorded and replayed as a CUDA graph (core/graphs.py), or eager


def _cuda_trainer(cfg_factory, variant: str, seeds: int = 1, graphs: str = "auto", **kw) -> Trainer:
    cfg = cfg_factory(*VARIANTS[variant], f"run.seeds={seeds}", "early_stopping.enabled=false",
                      f"run.cuda_graphs={graphs}")
    if seeds > 1 or "members" in kw:
        return MultiTrainer(cfg, "cuda", **kw)
    return Trainer(cfg, "cuda")


def _no_sync_epochs(tr: Trainer, epochs: int = 2) -> None:
    for _ in range(2):  # warm-up: lazy initialisations (cuBLAS handles, optimizer state), graph capture
        tr._train_epoch(tr.gen)
        tr.evaluate()
    replays = tr._graphs.replays if tr._graphs is not None else 0
    for _ in range(epochs):
        with sync_debug("error"):
            tr._train_epoch(tr.gen)
        tr.evaluate()  # the epoch's one sync, outside the checked region
    m = tr.evaluate()
    assert math.isfinite(m["train_loss"]) and math.isfinite(m["val_loss"])
    if tr.cfg.run.cuda_graphs == "auto":  # the checked epochs were replays, not eager passes
        assert tr._graphs is not None and tr._graphs.replays - replays == 2 * epochs + 1
    else:
        assert tr._graphs is None


@pytest.mark.parametrize("graphs", GRAPHS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_trainer_epoch_has_no_host_sync(cfg_factory, variant, graphs):
    _no_sync_epochs(_cuda_trainer(cfg_factory, variant, graphs=graphs))


@pytest.mark.parametrize("graphs", GRAPHS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_stacked_seeds_epoch_has_no_host_sync(cfg_factory, variant, graphs):
    _no_sync_epochs(_cuda_trainer(cfg_factory, variant, seeds=3, graphs=graphs))


@pytest.mark.parametrize("graphs", GRAPHS)
def test_grouped_sweep_epoch_has_no_host_sync(cfg_factory, graphs):
    """The width sweep's model: several buckets, padded and masked members, two seeds."""
    members = [(s, w) for w in (2, 3, 8, 16, 64) for s in (0, 1)]
    tr = _cuda_trainer(cfg_factory, "adam", members=members, max_waste=0.5, graphs=graphs)
    assert len(tr.model.buckets) > 1 and tr.model.padded_fraction() > 1.0
    _no_sync_epochs(tr)


@pytest.mark.parametrize("graphs", GRAPHS)
@pytest.mark.parametrize("seeds", [1, 3])
def test_evaluate_syncs_exactly_once(cfg_factory, seeds, graphs):
    tr = _cuda_trainer(cfg_factory, "adam", seeds=seeds, graphs=graphs)
    tr.evaluate()  # warm-up
    tr.evaluate()  # (graphs: recorded here)
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


# ------------------------------------------------------------------------------------ CUDA graphs
# Graphed and eager runs do the same kernels in the same order on the same data order, so their
# metrics agree to float tolerance (settings without dropout / input noise, whose draws differ).
GRAPH_CASES = {
    "adam-noise": ["noise.label_noise=0.2"],
    "sgd-decoupled-l1": ["optim.optimizer=sgd", "optim.momentum=0.9", "optim.lr=0.05",
                         "regularization.weight_decay=0.001", "regularization.decoupled=true",
                         "regularization.l1=0.00001"],
    "adamw-seeds": ["optim.optimizer=adamw", "regularization.weight_decay=0.01", "run.seeds=3"],
    "adam-bf16": ["run.precision=bfloat16"],
    "ratt-cnn": ["model.kind=cnn1d", "model.channels=16", "ratt.enabled=true", "noise.label_noise=0.1"],
}


def _graph_run(cfg_factory, case: str, graphs: str, epochs: int = 6, tweak_at: int | None = None):
    cfg = cfg_factory(*GRAPH_CASES[case], f"optim.epochs={epochs}", "early_stopping.enabled=false",
                      f"run.cuda_graphs={graphs}")
    tr = MultiTrainer(cfg, "cuda") if cfg.run.seeds > 1 else Trainer(cfg, "cuda")
    rows: list[dict] = []

    def on_epoch(row):
        rows.append(row)
        if tweak_at is not None and row["epoch"] == tweak_at:
            tr.tweak(lr=cfg.optim.lr / 4, weight_decay=0.002)

    s = tr.run(on_epoch=on_epoch)
    assert s["status"] == "completed", s
    return tr, rows, s


def _assert_same_rows(a: list[dict], b: list[dict], loss_tol: float, err_tol: float) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        for k in ("train_loss", "val_loss"):
            assert rb[k] == pytest.approx(ra[k], rel=loss_tol, abs=loss_tol), (ra["epoch"], k)
        for k in ("train_err", "val_err"):
            assert rb[k] == pytest.approx(ra[k], abs=err_tol), (ra["epoch"], k)


@pytest.mark.parametrize("case", list(GRAPH_CASES))
def test_graphed_run_matches_eager(cfg_factory, case):
    tr_g, rows_g, s_g = _graph_run(cfg_factory, case, "auto")
    _, rows_e, s_e = _graph_run(cfg_factory, case, "off")
    assert tr_g._graphs is not None and tr_g._graphs.replays >= 8  # epochs 3..6 and their evaluations
    # bf16 rounds coarsely; cuDNN may pick other convolution algorithms while recording (seen on an
    # H200: CNN train_loss 1.99391 vs 1.99456 at epoch 5, Adam amplifying the last-bit differences)
    loose = "bf16" in case or "cnn" in case
    _assert_same_rows(rows_e, rows_g, loss_tol=2e-3 if loose else 1e-4, err_tol=0.01 if loose else 0.004)
    assert s_g["test_err"] == pytest.approx(s_e["test_err"], abs=0.01 if loose else 0.004)


def test_live_tweak_recaptures_the_graph(cfg_factory):
    """lr and weight decay are baked into a recorded epoch: a tweak must record a new one."""
    tr_g, rows_g, _ = _graph_run(cfg_factory, "adam-noise", "auto", epochs=7, tweak_at=3)
    _, rows_e, _ = _graph_run(cfg_factory, "adam-noise", "off", epochs=7, tweak_at=3)
    train_captures = 2  # before and after the tweak (plus one evaluation graph)
    assert tr_g._graphs.captures == train_captures + 1
    assert rows_g[-1]["lr"] == pytest.approx(rows_g[0]["lr"] / 4)
    _assert_same_rows(rows_e, rows_g, loss_tol=1e-4, err_tol=0.004)


def test_graphed_dropout_draws_fresh_masks(cfg_factory):
    """Dropout and input noise inside a replayed epoch: each replay advances the default CUDA
    generator by what the recorded epoch consumes, so every epoch draws fresh masks, the very ones
    the eager run draws: the graphed run equals the eager one (a frozen mask would not)."""
    extra = ["regularization.dropout=0.5", "regularization.input_noise=0.1"]
    GRAPH_CASES["dropout"] = extra
    try:
        tr_g, rows_g, _ = _graph_run(cfg_factory, "dropout", "auto", epochs=8)
        _, rows_e, _ = _graph_run(cfg_factory, "dropout", "off", epochs=8)
    finally:
        del GRAPH_CASES["dropout"]
    assert tr_g._graphs.replays >= 12
    _assert_same_rows(rows_e, rows_g, loss_tol=1e-4, err_tol=0.004)


def test_stacked_seed_equals_solo_on_cuda(cfg_factory):
    """On CUDA, stacked seed k after one epoch of Adam equals solo seed k (graphed both): the
    batched products round differently from single ones, nothing more."""
    cfg = cfg_factory("noise.label_noise=0.2", "optim.epochs=1", "early_stopping.enabled=false", "run.seeds=3")
    tr = MultiTrainer(cfg, "cuda")
    tr.run()
    stacked = tr.member_metrics()
    for k, (seed, _) in enumerate(tr.members):
        solo = Trainer(cfg.model_copy(update={"seed": seed, "run": cfg.run.model_copy(update={"seeds": 1})}), "cuda")
        solo.run()
        m = solo.evaluate()
        assert stacked["val_loss"][k] == pytest.approx(m["val_loss"], abs=1e-4), seed
        assert stacked["train_loss"][k] == pytest.approx(m["train_loss"], abs=1e-4), seed
        assert stacked["val_err"][k] == pytest.approx(m["val_err"], abs=0.004), seed


def test_graphed_run_resumes_from_a_checkpoint(cfg_factory):
    """A checkpoint taken from a graphed run (capturable optimizer state) continues the run: the
    resumed run's epochs equal the uninterrupted run's."""
    cfg = cfg_factory("noise.label_noise=0.2", "optim.epochs=8", "early_stopping.enabled=false")
    full: list[dict] = []
    Trainer(cfg, "cuda").run(on_epoch=full.append)
    states: list[dict] = []
    first = Trainer(cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"epochs": 5})}), "cuda")
    first.run(on_checkpoint=states.append, checkpoint_every_s=1e9)
    assert states and states[-1]["epoch"] == 5
    tr = Trainer(cfg, "cuda")
    tr.load_checkpoint(states[-1])
    rest: list[dict] = []
    with warnings.catch_warnings():
        # not "constructed with capturable=True ... but step() is running without CUDA graph capture"
        warnings.filterwarnings("error", message=".*capturable.*")
        s = tr.run(on_epoch=rest.append)
    assert s["status"] == "completed" and [r["epoch"] for r in rest] == [6, 7, 8]
    _assert_same_rows(full[5:], rest, loss_tol=1e-4, err_tol=0.004)


def test_a_failed_recording_falls_back_to_eager(cfg_factory):
    """An op that cannot be recorded (here a host sync planted in the epoch while recording) must
    not end the run: it trains eagerly from that epoch on, says so once, and equals an eager run."""
    cfg = cfg_factory("noise.label_noise=0.2", "optim.epochs=5", "early_stopping.enabled=false")
    tr = Trainer(cfg, "cuda")
    real = tr._epoch_steps

    def planted(perm, check_stop):
        if tr._capturing:
            torch.ones(1, device="cuda").item()  # not allowed while a stream is capturing
        return real(perm, check_stop)

    tr._epoch_steps = planted
    rows, events = [], []
    s = tr.run(on_epoch=rows.append, on_event=events.append)
    assert s["status"] == "completed", s
    warned = [e for e in events if e["event"] == "warning"]
    assert len(warned) == 1 and "CUDA graph" in warned[0]["message"]
    assert tr._graphs.failed and tr._graph_runner() is None
    _, eager, _ = _graph_run(cfg_factory, "adam-noise", "off", epochs=5)
    _assert_same_rows(eager, rows, loss_tol=1e-4, err_tol=0.004)


def test_cuda_width_sweep_in_one_bucket_equals_one_at_a_time(tmp_path, cfg_factory):
    """On CUDA a width sweep trains in one wide bucket (sweep.MAX_WASTE) and graphed; its numbers
    are the one-at-a-time runs' (float summation order aside)."""
    from gengap_tui import runs
    from gengap_tui.core.sweep import Sweep

    cfg = cfg_factory("optim.epochs=3", "optim.optimizer=sgd", "optim.lr=0.05", "optim.momentum=0.9",
                      "noise.label_noise=0.15", "device=cuda")
    widths = [2, 5, 13, 34, 89]
    s1 = Sweep(cfg, "model.width", widths).run(tmp_path / "together")
    s2 = Sweep(cfg, "model.width", widths, together=False).run(tmp_path / "each")
    assert s1["status"] == s2["status"] == "completed"
    meta = runs.read_json(tmp_path / "together" / "sweep.json")
    assert meta["buckets"] == 1
    a, b = runs.read_jsonl(tmp_path / "together" / "sweep.jsonl"), runs.read_jsonl(tmp_path / "each" / "sweep.jsonl")
    for ra, rb in zip(a, b):
        for k in ("train_err", "val_err", "test_err"):
            assert ra[k] == pytest.approx(rb[k], abs=0.004), (ra["value"], k)
        assert ra["test_loss"] == pytest.approx(rb["test_loss"], rel=1e-3)


@pytest.mark.parametrize("stop_in", ["recording-epoch", "later-epoch"])
def test_a_stop_after_a_failed_recording_still_saves_the_last_epoch(cfg_factory, stop_in):
    """Checkpoints are lazy while epochs are graphed (captured only when saved); once the recording
    fails (a planted host sync, as above) they are captured after every epoch again, and the epoch
    whose recording failed runs to its end like the graphed epoch it replaces. So a stop in the
    middle of that epoch ends the run after it (`recording-epoch`: epoch 2 saved), and a stop in
    the middle of a later, eager epoch saves the last finished one (`later-epoch`: epoch 3). The
    saved counters are host tensors (device clones until then)."""
    cfg = cfg_factory("noise.label_noise=0.2", "optim.epochs=6", "early_stopping.enabled=false")
    tr = Trainer(cfg, "cuda")
    real_steps, real_take = tr._epoch_steps, tr.batches.take
    seen = {"eager_after_failure": 0, "epoch": 0}

    def planted(perm, check_stop):
        if tr._capturing:
            torch.ones(1, device="cuda").item()  # not allowed while a stream is capturing
        return real_steps(perm, check_stop)

    def take(idx):
        if tr._graphs is not None and tr._graphs.failed and not tr._capturing:
            seen["eager_after_failure"] += 1
            if (stop_in == "recording-epoch" and seen["eager_after_failure"] == 2) or (
                    stop_in == "later-epoch" and seen["epoch"] == 3 and not tr._stop_requested):
                tr.request_stop("test")
        return real_take(idx)

    tr._epoch_steps = planted
    tr.batches.take = take
    states: list[dict] = []
    s = tr.run(on_epoch=lambda r: seen.update(epoch=r["epoch"]), on_checkpoint=states.append,
               checkpoint_every_s=1e9)
    saved = 2 if stop_in == "recording-epoch" else 3
    assert s["status"] == "cancelled" and s["epochs_run"] == saved, s
    assert tr._graphs.failed and not tr._epochs_atomic()
    assert [st["epoch"] for st in states] == [saved]
    assert all(v.device.type == "cpu" for v in states[-1]["examples"].values() if isinstance(v, torch.Tensor))
