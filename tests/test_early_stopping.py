"""Table-driven tests of docs/ARCHITECTURE.md, "Early stopping"."""

import math

import pytest

from gengap_tui.config import EarlyStoppingSection
from gengap_tui.core.early_stopping import EarlyStopping, StepResult


def trace(values, **kw):
    es = EarlyStopping(**kw)
    rows = []
    for e, v in enumerate(values, 1):
        r = es.step(e, v)
        rows.append((es.wait, es.best_epoch, r.improved, r.stop))
        if r.stop:
            break
    return es, rows


CASES = [
    # name, values, settings, expected waits, best_epoch, stop_epoch, would_stop_epoch
    ("plain", [5, 4, 4, 4], dict(patience=2), [0, 0, 1, 2], 2, 4, None),
    ("first epoch always improves", [9e9], dict(patience=1), [0], 1, None, None),
    ("equal is not improvement", [1, 1, 1], dict(patience=2), [0, 1, 2], 1, 3, None),
    ("abs min_delta", [1.0, 0.95, 0.89, 0.85], dict(patience=3, min_delta=0.1), [0, 1, 0, 1], 3, None, None),
    ("abs min_delta fires", [1.0, 0.95, 0.91], dict(patience=2, min_delta=0.1), [0, 1, 2], 1, 3, None),
    ("rel min_delta", [1.0, 0.95, 0.89], dict(patience=5, min_delta=0.1, min_delta_mode="rel"), [0, 1, 0], 3, None, None),
    ("rel boundary", [1.0, 0.9], dict(patience=1, min_delta=0.1, min_delta_mode="rel"), [0, 1], 1, 2, None),
    ("warm-up ignores early epochs", [1, 2, 3, 4, 5], dict(patience=2, start_from_epoch=2), [0, 0, 0, 1, 2], 3, 5, None),
    ("warm-up then improvement", [5, 4, 3, 2, 1], dict(patience=1, start_from_epoch=3), [0, 0, 0, 0, 0], 5, None, None),
    ("reset after improvement", [3, 4, 2, 5, 6], dict(patience=2), [0, 1, 0, 1, 2], 3, 5, None),
    ("observe never stops", [3, 4, 4, 4, 2, 5, 5, 5], dict(patience=2, observe=True),
     [0, 1, 2, 3, 0, 1, 2, 3], 5, None, 3),
    ("disabled tracks best, never fires", [3, 4, 4, 4], dict(patience=1, enabled=False), [0, 1, 2, 3], 1, None, None),
]


@pytest.mark.parametrize("name, values, kw, waits, best_epoch, stop_epoch, would_stop", CASES,
                         ids=[c[0] for c in CASES])
def test_semantics(name, values, kw, waits, best_epoch, stop_epoch, would_stop):
    es, rows = trace(values, **kw)
    assert [r[0] for r in rows] == waits
    assert es.best_epoch == best_epoch
    assert es.stop_epoch == stop_epoch
    assert es.would_stop_epoch == would_stop
    assert es.best == min(v for e, v in enumerate(values[: len(rows)], 1) if e == best_epoch)


def test_warm_up_leaves_best_unset():
    es = EarlyStopping(patience=1, start_from_epoch=3)
    for e in (1, 2, 3):
        es.step(e, 0.1)
        assert es.best_epoch is None and es.wait == 0


def test_lowering_patience_below_wait_fires_next_epoch():
    es = EarlyStopping(patience=10)
    for e, v in enumerate([1, 2, 2, 2, 2], 1):
        es.step(e, v)
    assert es.wait == 4 and es.stop_epoch is None
    es.patience = 3
    assert es.step(6, 2).stop and es.stop_epoch == 6


def test_state_round_trip():
    es, _ = trace([3, 2, 4], patience=5)
    again = EarlyStopping.from_state(es.state())
    assert again == es


@pytest.mark.parametrize("kw", [dict(patience=0), dict(min_delta=-1), dict(min_delta_mode="pct")])
def test_rejects_bad_settings(kw):
    with pytest.raises(ValueError):
        EarlyStopping(**kw)


# --- mutation-testing round (issue 26): exact results, the min_delta modes apart, the boundaries


def test_each_step_returns_exactly_improved_fired_stop():
    es = EarlyStopping(patience=2, start_from_epoch=1)
    got = [es.step(e, v) for e, v in enumerate([0.1, 5, 6, 6], 1)]
    assert got == [
        StepResult(improved=False, fired=False, stop=False),  # epoch 1: not monitored (start_from_epoch)
        StepResult(improved=True, fired=False, stop=False),   # first monitored epoch
        StepResult(improved=False, fired=False, stop=False),  # wait 1
        StepResult(improved=False, fired=True, stop=True),    # wait 2 == patience
    ]
    assert es.stop_epoch == 4 and es.best == 5 and es.best_epoch == 2


def test_observe_fires_once_and_never_asks_to_stop():
    es = EarlyStopping(patience=1, observe=True)
    got = [es.step(e, v) for e, v in enumerate([3, 4, 5, 6], 1)]
    assert got == [
        StepResult(improved=True, fired=False, stop=False),
        StepResult(improved=False, fired=True, stop=False),   # the would-stop epoch
        StepResult(improved=False, fired=False, stop=False),  # fired already: not again
        StepResult(improved=False, fired=False, stop=False),
    ]
    assert es.would_stop_epoch == 2 and es.stop_epoch is None


def test_a_stopped_run_never_fires_again():
    es = EarlyStopping(patience=1)
    assert es.step(1, 1.0) == StepResult(True, False, False)
    assert es.step(2, 2.0) == StepResult(False, True, True)
    assert es.step(3, 2.0) == StepResult(False, False, False)
    assert es.stop_epoch == 2


@pytest.mark.parametrize(
    "mode, value, improved",
    [
        # best 10, min_delta 0.1: abs needs v < 9.9, rel needs v < 10 * 0.9 = 9.0
        ("abs", 9.95, False), ("abs", 9.9, False), ("abs", 9.5, True),
        ("rel", 9.5, False), ("rel", 9.0, False), ("rel", 8.99, True),
    ],
)
def test_min_delta_abs_and_rel_differ_away_from_one(mode, value, improved):
    es = EarlyStopping(patience=5, min_delta=0.1, min_delta_mode=mode)
    es.step(1, 10.0)
    assert es.is_improvement(value) is improved
    assert es.step(2, value).improved is improved
    assert (es.best, es.best_epoch, es.wait) == ((value, 2, 0) if improved else (10.0, 1, 1))


@pytest.mark.parametrize("start, monitored", [(0, [1, 2, 3]), (1, [2, 3]), (3, [])])
def test_start_from_epoch_is_the_last_epoch_left_unmonitored(start, monitored):
    es = EarlyStopping(patience=10, start_from_epoch=start)
    seen = [e for e in (1, 2, 3) if es.step(e, 10.0 - e).improved]
    assert seen == monitored


def test_from_config_takes_every_setting_of_the_section():
    section = EarlyStoppingSection(enabled=False, patience=7, min_delta=0.25, min_delta_mode="rel",
                                   start_from_epoch=3, observe=True)
    es = EarlyStopping.from_config(section)
    assert (es.patience, es.min_delta, es.min_delta_mode, es.start_from_epoch, es.observe, es.enabled) == (
        7, 0.25, "rel", 3, True, False)
    assert (es.best, es.best_epoch, es.wait, es.stop_epoch, es.would_stop_epoch) == (math.inf, None, 0, None, None)


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(patience=0), "patience must be >= 1"),
        (dict(patience=-3), "patience must be >= 1"),
        (dict(min_delta=-1e-9), "min_delta must be >= 0"),
        (dict(min_delta_mode="pct"), "min_delta_mode must be 'abs' or 'rel'"),
        (dict(min_delta_mode="ABS"), "min_delta_mode must be 'abs' or 'rel'"),
    ],
)
def test_bad_settings_are_refused_with_the_field_and_what_is_allowed(kw, message):
    with pytest.raises(ValueError) as info:
        EarlyStopping(**kw)
    assert str(info.value) == message


@pytest.mark.parametrize("kw", [dict(patience=1), dict(min_delta=0.0), dict(min_delta_mode="rel")])
def test_settings_at_their_bounds_are_accepted(kw):
    es = EarlyStopping(**kw)
    assert all(getattr(es, k) == v for k, v in kw.items())
