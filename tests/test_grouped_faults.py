"""A grouped sweep (values trained together as one `MultiTrainer`: core/units.py) when something
goes wrong in it: one member diverging leaves the others' numbers alone (norms, per-example
counters), and a stop or a failure is told in exactly the words and numbers of a solo run."""

import math

import numpy as np
import pytest
import torch

from conftest import small_cfg
from gengap_tui import runs
from gengap_tui.protocol import MEASURED_KEYS
from gengap_tui.core import norms
from gengap_tui.core.data import load
from gengap_tui.core.multi import MultiTrainer
from gengap_tui.core.sweep import Sweep
from gengap_tui.core.trainer import Trainer
from gengap_tui.core.units import Sink, Unit

TINY = ("data.n_train=200", "data.n_val=100", "model.depth=2", "optim.optimizer=sgd", "optim.lr=0.05",
        "run.threads=1")


def _numbers(rows: list[dict]) -> list[dict]:
    """Metrics rows without what two runs of the same numbers may differ in (timings, CPU use)."""
    return [{k: v for k, v in r.items() if k not in MEASURED_KEYS} for r in rows]


def _poison(model, member: int) -> None:
    """Every weight matrix of stacked member `member` becomes NaN (a diverged member)."""
    with torch.no_grad():
        for members, mats in norms.layer_groups(model):
            if members.start <= member < members.stop:
                for W in mats:
                    W[member - members.start].fill_(math.nan)


# ------------------------------------------------------------------------------------ norms
@pytest.mark.parametrize("max_waste", [0.0, 10.0])  # each member its own bucket, or one bucket for both
def test_one_diverged_member_leaves_the_others_norms_alone(max_waste):
    """Widths 8 and 96 (its 96 x 96 layer by warm-started power iteration): with member 0's weights
    NaN, member 0's norms are NaN and member 1's exactly those of the same stack left healthy."""
    cfg = small_cfg(*TINY)
    healthy = MultiTrainer(cfg, members=[(0, 8), (0, 96)], max_waste=max_waste)
    sick = MultiTrainer(cfg, members=[(0, 8), (0, 96)], max_waste=max_waste)
    assert len(sick.model.buckets) == (2 if max_waste == 0 else 1)
    assert sick.norms.measure() == healthy.norms.measure()
    saved = {k: v.clone() for k, v in sick.model.state_dict().items()}
    _poison(sick.model, 0)
    for _ in range(3):  # and the healthy member's warm-start vectors are its own, epoch after epoch
        got, want = sick.norms.measure(), healthy.norms.measure()
        for k in ("weight_norm", "spectral_norm_product"):
            assert math.isnan(got[k][0]), got
            assert got[k][1] == want[k][1], (k, got, want)
    # a member finite again is measured afresh (its first measurement's iterations): as an SVD says
    sick.model.load_state_dict(saved)
    again, exact = sick.norms.measure(), norms.exact(sick.model, 2)
    assert again["spectral_norm_product"] == pytest.approx(exact["spectral_norm_product"], rel=1e-3)
    assert again["weight_norm"] == pytest.approx(exact["weight_norm"], rel=1e-5)
    if max_waste == 0:  # (its own bucket: the other member's numbers stay the healthy stack's)
        assert again["spectral_norm_product"][1] == healthy.norms.measure()["spectral_norm_product"][1]


# ------------------------------------------------------------------------------------ a unit
class Records(Sink):
    """Keeps what a unit reports; `at_progress(row)` runs after each progress row."""

    def __init__(self, at_progress=None):
        self.rows, self.events, self.finals, self.examples_of = {}, {}, {}, {}
        self.progress_rows, self.at_progress = [], at_progress

    def progress(self, row):
        self.progress_rows.append(row)
        if self.at_progress is not None:
            self.at_progress(row)

    def metrics(self, value, row):
        self.rows.setdefault(value, []).append(row)

    def event(self, value, ev):
        self.events.setdefault(value, []).append(ev)

    def finish(self, value, summary):
        self.finals[value] = summary

    def examples(self, value, counters, rows, noisy):
        self.examples_of[value] = counters.arrays(noisy, rows)


def _unit(cfg, widths):
    configs = [cfg.model_copy(update={"model": cfg.model.model_copy(update={"width": w})}) for w in widths]
    return Unit(cfg, "model.width", widths, configs, torch.device("cpu"), together=True, max_waste=0.0,
                observe=False)


def _run_unit(cfg, widths, at_progress=None):
    unit = _unit(cfg, widths)
    sink = Records(lambda row: at_progress(unit, row) if at_progress else None)
    finals, status, reason = unit.run(load(cfg), sink)
    return sink, finals, status, reason


def test_a_diverged_value_stops_counting_its_examples_and_ends_as_a_solo_run_does():
    """Width 4's weights turn NaN after epoch 2: its examples.npz is what it was at epoch 2 (what
    the same sweep run for 2 epochs writes), its summary says `diverged` in a solo run's words at
    epoch 3 with 2 epochs run; width 32 goes on, its numbers and counters those of a sweep without
    the fault."""
    cfg = small_cfg(*TINY, "optim.epochs=4", "noise.label_noise=0.2")

    def poison_after_2(unit, row):
        if row["epoch"] == 2:
            _poison(unit._trainer.model, 0)

    sick, finals, status, _ = _run_unit(cfg, [4, 32], poison_after_2)
    clean, clean_finals, _, _ = _run_unit(cfg, [4, 32])
    short, _, _, _ = _run_unit(small_cfg(*TINY, "optim.epochs=2", "noise.label_noise=0.2"), [4, 32])
    assert status == "completed"
    s4 = finals[4]
    assert s4["status"] == "diverged" and s4["epochs_run"] == 2
    assert s4["reason"] == "train_loss became nan at epoch 3", s4["reason"]
    assert [r["epoch"] for r in sick.rows[4]] == [1, 2] and _numbers(sick.rows[4]) == _numbers(clean.rows[4][:2])
    assert [e["event"] for e in sick.events[4]].count("diverged") == 1
    assert [e["epoch"] for e in sick.events[4] if e["event"] == "diverged"] == [3]
    # its counters stop at its divergence: exactly the 2-epoch sweep's file
    got, want = sick.examples_of[4], short.examples_of[4]
    assert int(got["epochs"]) == 2 and set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert int(clean.examples_of[4]["epochs"]) == 4  # (without the fault it counts on)
    # progress rows leave it out from its divergence on; the healthy value is untouched
    assert [p["train_err"][0] is None for p in sick.progress_rows] == [False, False, True, True]
    assert _numbers(sick.rows[32]) == _numbers(clean.rows[32]) and finals[32]["status"] == "completed"
    for k in clean.examples_of[32]:
        np.testing.assert_array_equal(sick.examples_of[32][k], clean.examples_of[32][k], err_msg=k)
    assert all(isinstance(r["weight_norm"], float) and math.isfinite(r["weight_norm"]) for r in sick.rows[32])
    assert clean_finals[4]["status"] == "completed"


def test_a_diverged_values_examples_match_its_solo_run():
    """A huge learning rate diverges the value on its own: its counters are a solo run's (which
    stops counting at its divergence) and so are its epochs and reason; with nothing left to
    train, the unit stops as the solo run does."""
    cfg = small_cfg(*TINY, "optim.epochs=4", "optim.lr=1e6")
    sink, finals, _, _ = _run_unit(cfg, [16])
    solo = Trainer(cfg.model_copy(update={"model": cfg.model.model_copy(update={"width": 16})}))
    s = solo.run()
    assert s["status"] == finals[16]["status"] == "diverged"
    assert finals[16]["epochs_run"] == s["epochs_run"] and finals[16]["reason"] == s["reason"]
    assert len(sink.progress_rows) == s["epochs_run"] + 1 < 4  # every value diverged: the unit stops there
    want = solo.examples.arrays(solo.changed)
    for k in want:
        np.testing.assert_array_equal(sink.examples_of[16][k], want[k], err_msg=k)


# ------------------------------------------------------------------------------------ stops and failures
def _solo_and_sweep(cfg, width, stop_solo, stop_sweep, tmp_path):
    """(the solo run's summary, the grouped sweep's summary of that value)."""
    solo_cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"width": width})})
    tr = Trainer(solo_cfg)
    s = tr.run(on_epoch=lambda row: stop_solo(tr, row))
    sw = Sweep(cfg, "model.width", [width, 2 * width])
    assert sw.together
    sw.run(tmp_path / "sw", on_progress=lambda row: stop_sweep(sw, row))
    return s, runs.read_json(sw._value_dir(tmp_path / "sw", width) / "summary.json")


def test_a_stop_at_an_epochs_end_is_told_as_a_solo_runs(tmp_path):
    cfg = small_cfg(*TINY, "optim.epochs=6")
    stop = "stopped by the user from the lab"
    s, g = _solo_and_sweep(cfg, 8, lambda tr, row: row["epoch"] == 2 and tr.request_stop(stop),
                           lambda sw, row: row["epoch"] == 2 and sw.request_stop(stop), tmp_path)
    assert s["status"] == g["status"] == "cancelled" and s["epochs_run"] == g["epochs_run"] == 2
    assert g["reason"] == s["reason"] == f"{stop} during epoch 3", (s["reason"], g["reason"])


def test_a_stop_mid_epoch_and_out_of_memory_are_told_as_a_solo_runs(tmp_path, monkeypatch):
    """The third epoch's second batch: a stop (Ctrl+C) cuts it short; then out of memory there."""
    cfg = small_cfg(*TINY, "optim.epochs=6", "optim.batch_size=64")  # 4 batches an epoch
    real = Trainer._backward_step
    at = {"n": 0, "stop": None, "fail": False}

    def step(self, loss, sgd_decoupled):
        at["n"] += 1
        if at["n"] == 2 * 4 + 2:
            if at["fail"]:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            at["stop"]("stopped by the user (Ctrl+C)")
        return real(self, loss, sgd_decoupled)

    monkeypatch.setattr(Trainer, "_backward_step", step)
    for fail in (False, True):
        at.update(n=0, fail=fail)
        tr = Trainer(cfg.model_copy(update={"model": cfg.model.model_copy(update={"width": 8})}))
        at["stop"] = tr.request_stop
        s = tr.run()
        at["n"] = 0
        sw = Sweep(cfg, "model.width", [8, 16])
        at["stop"] = sw.request_stop
        sw.run(tmp_path / str(fail))
        g = runs.read_json(sw._value_dir(tmp_path / str(fail), 8) / "summary.json")
        assert s["epochs_run"] == g["epochs_run"] == 2 and s["status"] == g["status"], (s, g)
        assert g["reason"] == s["reason"], (s["reason"], g["reason"])
        want = "out of memory on CPU" if fail else "stopped by the user (Ctrl+C) during epoch 3"
        assert s["reason"].startswith(want), s["reason"]
