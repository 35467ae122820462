"""The shape of a sweep (core.sweep.shape_of) and the line `gengap-tui sweep` ends with: a
test-error peak stands above both the dip before it and the last value, or there is none."""

import json
import math

import pytest

from gengap_tui.cli import main, sweep_shape_line
from gengap_tui.core.sweep import shape_of

NO_PEAK = "no test-error peak (no value stands above both the dip before it and the last value)"
PEAK_KEYS = ("peak_value", "peak_test_err", "dip_value", "dip_test_err")


def rows(values, test_errs, train_errs=None):
    train_errs = train_errs or [0.5] * len(values)
    return [{"value": float(v), "test_err": a, "train_err": b} for v, a, b in zip(values, test_errs, train_errs)]


def summary_of(shape):
    return {"status": "completed", "wall_seconds": 1.0, **shape}


def test_a_real_peak_stands_above_its_dip_and_the_last_value():
    s = shape_of(rows([2, 4, 8, 16, 32], [0.50, 0.40, 0.60, 0.55, 0.45], [0.6, 0.3, 0.0, 0.0, 0.0]))
    assert (s["peak_value"], s["peak_test_err"], s["dip_value"], s["dip_test_err"]) == (8, 0.60, 4, 0.40)
    assert s["peak_prominence"] == pytest.approx(0.15) and s["interpolation_threshold"] == 8
    line = sweep_shape_line(summary_of(s), "model.width")
    assert "test-error peak 0.600 at 8 | dip before it 0.400 at 4 | last 0.450" in line
    assert "no test-error peak" not in line


@pytest.mark.parametrize("test_errs", [
    [0.500, 0.496, 0.482, 0.470],   # the reported sweep: falling all along ("peak 0.482 below its dip 0.496")
    [0.30, 0.28, 0.33, 0.40],      # a bump above the dip, but below the last value
    [0.50, 0.45, 0.47, 0.46, 0.30],  # a small bump above the dip, falling further after it
    [0.40, 0.40, 0.40, 0.40],      # all equal
])
def test_no_value_standing_above_both_is_no_peak(test_errs):
    values = [8, 32, 128, 512, 1024][: len(test_errs)]
    s = shape_of(rows(values, test_errs))
    if test_errs == [0.50, 0.45, 0.47, 0.46, 0.30]:  # 0.47 > 0.45 and > 0.30: a real (small) peak
        assert s["peak_value"] == 128 and s["peak_prominence"] == pytest.approx(0.02)
        return
    assert all(s[k] is None for k in PEAK_KEYS), s
    assert s["peak_prominence"] is not None and s["peak_prominence"] <= 0
    assert s["last_test_err"] == test_errs[-1]
    line = sweep_shape_line(summary_of(s), "model.width")
    assert NO_PEAK in line and "| dip before it" not in line and "| test-error peak" not in line


def test_two_values_have_no_peak_candidate():
    s = shape_of(rows([8, 32], [0.5, 0.4]))
    assert all(s[k] is None for k in PEAK_KEYS) and s["peak_prominence"] is None and s["last_test_err"] == 0.4
    line = sweep_shape_line(summary_of(s), "model.width")
    assert "no test-error peak (that takes 3 values or more" in line and line.endswith("last 0.400")


def test_values_without_a_test_error_are_left_out():
    s = shape_of(rows([2, 4, 8, 16], [0.5, math.nan, 0.7, 0.4]))
    assert s["peak_value"] == 8 and s["dip_value"] == 2
    # a sweep that failed before any value finished: no shape at all, and the line says nothing of a peak
    line = sweep_shape_line({"status": "failed", "reason": "boom"}, "model.width")
    assert line == "failed in 0.0s"


def test_cli_sweep_prints_no_peak_when_the_test_error_only_falls(tmp_path, capsys):
    """Widths 2, 16 and 256 for a few epochs: the test error falls steeply from one to the next (the
    reported sweep printed a "peak" below its "dip" for such a curve)."""
    code = main(["sweep", "default", "--param", "model.width", "--values", "2,16,256", "--set", "optim.epochs=10",
                 "--set", "optim.lr=0.01",
                 "--set", "data.n_train=400", "--set", "data.n_val=200", "--device", "cpu",
                 "--runs-dir", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    (d,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((d / "summary.json").read_text())
    rows_ = [json.loads(line) for line in (d / "sweep.jsonl").read_text().splitlines()]
    te = [r["test_err"] for r in rows_]
    assert te[0] > te[1] > te[2], te  # the premise
    assert all(summary[k] is None for k in PEAK_KEYS) and summary["peak_prominence"] <= 0
    last = out.strip().splitlines()[-1]
    assert NO_PEAK in last and "| dip before it" not in last and "| test-error peak" not in last
    assert last == sweep_shape_line(summary, "model.width")
