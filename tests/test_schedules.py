"""Learning-rate schedules (core/schedules.py): constant, cosine, step, exponential, after a
linear warm-up; validated by the config; `lr` and the decay factors tweakable live."""

import math

import pytest

from conftest import small_cfg
from gengap_tui.config import ConfigError, build
from gengap_tui.core.schedules import lr_factor
from gengap_tui.core.trainer import Trainer


def optim(*sets):
    return build({}, ["optim.epochs=20", *sets]).optim


def test_each_schedule_by_hand():
    assert [lr_factor(optim(), e) for e in (1, 7, 20)] == [1.0, 1.0, 1.0]
    o = optim("optim.schedule=exponential")
    assert [lr_factor(o, e) for e in (1, 2, 3)] == pytest.approx([1.0, 0.95, 0.95 ** 2])
    o = optim('optim.schedule="step"', "optim.step_every=5", "optim.step_factor=0.5")
    assert [lr_factor(o, e) for e in (1, 5, 6, 10, 11, 16)] == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.125])
    o = optim("optim.schedule=cosine")
    assert lr_factor(o, 1) == 1.0 and lr_factor(o, 11) == pytest.approx(0.5)
    # a warm-up rises linearly to the rate, then the schedule starts from its beginning
    o = optim("optim.schedule=exponential", "optim.warmup_epochs=4")
    assert [lr_factor(o, e) for e in (1, 2, 4, 5, 6)] == pytest.approx([0.25, 0.5, 1.0, 1.0, 0.95])
    o = optim("optim.schedule=cosine", "optim.warmup_epochs=4")
    assert lr_factor(o, 5) == 1.0 and lr_factor(o, 20) == pytest.approx(0.5 * (1 + math.cos(math.pi * 15 / 16)))


@pytest.mark.parametrize("sets, field", [
    (["optim.warmup_epochs=20"], "optim.warmup_epochs"),
    (['optim.schedule="linear"'], "optim.schedule"),
    (["optim.exp_factor=1.5"], "optim.exp_factor"),
    (["optim.step_factor=0"], "optim.step_factor"),
    (["optim.step_every=0"], "optim.step_every"),
])
def test_bad_schedules_are_refused_naming_the_field(sets, field):
    with pytest.raises(ConfigError) as err:
        build({}, ["optim.epochs=20", *sets])
    assert any(p.startswith(field) for p in err.value.problems), err.value.problems
    assert "allowed" in str(err.value)


def test_rows_follow_the_schedule_and_take_live_tweaks():
    tr = Trainer(small_cfg("optim.schedule=exponential", "optim.warmup_epochs=2", "optim.epochs=8",
                           "optim.lr=0.01", "early_stopping.enabled=false", "data.n_train=300"))
    rows = []

    def on_epoch(row):
        rows.append(row)
        if row["epoch"] == 4:  # from epoch 5 on: a faster decay and a new base rate
            tr.tweak(exp_factor=0.5, lr=0.02)

    tr.run(on_epoch=on_epoch)
    lrs = [r["lr"] for r in rows]
    assert lrs[:4] == pytest.approx([0.005, 0.01, 0.01, 0.0095])
    assert lrs[4:] == pytest.approx([0.02 * 0.5 ** t for t in (2, 3, 4, 5)])


def test_a_resumed_run_keeps_the_tweaked_factor():
    cfg = small_cfg('optim.schedule="step"', "optim.step_every=2", "optim.epochs=8",
                    "early_stopping.enabled=false", "data.n_train=300")
    states = []
    tr = Trainer(cfg)

    def on_epoch(row):
        if row["epoch"] == 2:
            tr.tweak(step_factor=0.5)
        if row["epoch"] == 4:
            tr.request_stop()

    tr.run(on_epoch=on_epoch, on_checkpoint=states.append, checkpoint_every_s=0.0)
    again = Trainer(cfg)
    again.load_checkpoint(states[-1])
    rows = []
    again.run(on_epoch=rows.append)
    assert [r["lr"] for r in rows] == pytest.approx([0.01 * 0.5 ** 2, 0.01 * 0.5 ** 2, 0.01 * 0.5 ** 3, 0.01 * 0.5 ** 3])
