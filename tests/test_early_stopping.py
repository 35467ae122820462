"""Table-driven tests of docs/ARCHITECTURE.md, "Early stopping"."""

import pytest

from gengap_tui.core.early_stopping import EarlyStopping


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
