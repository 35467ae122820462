"""What each curves view plots, call by call: `fit_title`, `Plot.fill` (the plotext calls, in
order), `run_plot` (a run's lines, a seeds band, compared runs, the epochs marked, log loss, the x
axis), `sweep_plot` (a sweep's lines, bands, grid lines, threshold, cursor, title, ticks and
limits) and the examples view. Pure: no app, no training (the plots are checked against the
Recorder that stands in for plotext). These are the tests mutation testing leans on for plots.py."""

import math

import pytest

from gengap_tui.config import build
from gengap_tui.tui.plots import (BAND_COLORS, COMPARE_COLORS, GRID_COLORS, SWEEP_BAND_COLORS, Plot,
                                  examples_plot, fit_title, run_plot, sweep_plot)
from gengap_tui.tui.series import RunSeries, log10_ticks
from gengap_tui.tui.state import RunState, SweepState

from conftest import Recorder

L = math.log10


def drawn(plot) -> list:
    rec = Recorder()
    plot.fill(rec)
    return rec.calls


def approx_list(xs):
    return [pytest.approx(x, abs=1e-12) for x in xs]


# ------------------------------------------------------------------------------------ fit_title
@pytest.mark.parametrize("width, title", [
    (12, "alpha | beta"),           # exactly as wide as the plot: kept
    (11, "alpha"),                  # one character short: the part is left out
    (17, "alpha | beta"),
    (18, "alpha | beta | gam"),
    (80, "alpha | beta | gam"),
])
def test_a_title_keeps_the_parts_that_fit_the_width(width, title):
    assert fit_title(["alpha", "beta", "gam"], width) == title


def test_a_title_stops_at_the_first_part_that_does_not_fit_even_if_a_later_one_would():
    # parts are in order of importance: a short last part never jumps over a long one left out
    assert fit_title(["alpha", "a much longer part", "x"], 12) == "alpha"


def test_a_title_always_keeps_its_first_part_even_when_too_wide():
    assert fit_title(["a first part wider than the plot", "b"], 5) == "a first part wider than the plot"
    assert fit_title(["only"], 80) == "only"


# ------------------------------------------------------------------------------------ Plot.fill
def test_fill_draws_bands_under_lines_then_markers_then_the_axes_in_order():
    plot = Plot("t", "epoch", bands=[([1, 2], [0.1, 0.2], (1, 2, 3))],
                lines=[([1, 2], [0.3, 0.4], "train", None), ([1, 2], [0.5, 0.6], "B", "cyan")],
                vlines=[(2, "green")], hlines=[(0.25, "cyan")], texts=[("note", 1, 0.5, "magenta")],
                xticks=([1, 2],), yticks=([0, 1], ["1", "10"]), xlim=(1, 2), ylim=(0, 1), ylabel="error")
    assert drawn(plot) == [
        ("plot", ([1, 2], [0.1, 0.2]), {"marker": "braille", "color": (1, 2, 3)}),
        ("plot", ([1, 2], [0.3, 0.4]), {"label": "train", "marker": "braille"}),  # plotext's own color
        ("plot", ([1, 2], [0.5, 0.6]), {"label": "B", "marker": "braille", "color": "cyan"}),
        ("vline", (2, "green"), {}),
        ("hline", (0.25, "cyan"), {}),
        ("text", ("note", 1, 0.5), {"color": "magenta", "alignment": "left"}),
        ("yticks", ([0, 1], ["1", "10"]), {}),
        ("title", ("t",), {}),
        ("xlabel", ("epoch",), {}),
        ("ylabel", ("error",), {}),
        ("xlim", (1, 2), {}),
        ("ylim", (0, 1), {}),
        ("xticks", ([1, 2],), {}),  # a run's ticks after its limits
    ]


def test_fill_marks_each_point_of_a_sweeps_lines_and_sets_its_ticks_before_the_title():
    plot = Plot("s", "model.width", lines=[([1, 2], [0.3, 0.4], "test err", "red+")], points=True,
                xticks=([1, 2], ["2", "4"]))
    assert drawn(plot) == [
        ("plot", ([1, 2], [0.3, 0.4]), {"label": "test err", "marker": "braille", "color": "red+"}),
        ("scatter", ([1, 2], [0.3, 0.4]), {"marker": "●", "color": "red+"}),
        ("xticks", ([1, 2], ["2", "4"]), {}),
        ("title", ("s",), {}),
        ("xlabel", ("model.width",), {}),
    ]


def test_fill_of_an_empty_plot_sets_only_its_title_and_label():
    assert drawn(Plot("nothing yet", "epoch")) == [("title", ("nothing yet",), {}), ("xlabel", ("epoch",), {})]
    # a run's lines (no points) are never scattered, even with a color
    calls = drawn(Plot("t", "epoch", lines=[([1], [0.5], "val x", "cyan")]))
    assert [c[0] for c in calls] == ["plot", "title", "xlabel"]


# ------------------------------------------------------------------------------------ run_plot
def run_state(rows=(), events=(), epochs=80) -> RunState:
    run = RunState(build({"name": "plots"}, [f"optim.epochs={epochs}", "device=cpu"]))
    for row in rows:
        run.series.add(dict(row))
    run.events.extend(events)
    return run


ROWS = [  # five epochs of a run with label noise
    {"epoch": e, "train_err": tr, "val_err": va, "gap_err": va - tr, "train_loss": tl, "val_loss": vl,
     "train_clean_err": tc, "noisy_memorized": nm}
    for e, tr, va, tl, vl, tc, nm in [
        (1, 0.50, 0.55, 2.0, 2.1, 0.45, 0.05), (2, 0.40, 0.48, 1.0, 1.2, 0.35, 0.10),
        (3, 0.30, 0.44, 0.5, 0.9, 0.25, 0.20), (4, 0.20, 0.43, 0.2, 1.0, 0.15, 0.40),
        (5, 0.10, 0.45, 0.1, 1.3, 0.05, 0.70)]
]
EPOCHS = [1.0, 2.0, 3.0, 4.0, 5.0]


def col(key, rows=ROWS):
    return [r[key] for r in rows]


def test_the_error_view_plots_train_val_and_gap_against_the_epoch():
    plot = run_plot(run_state(ROWS), "error", False, 80)
    assert plot.title == "error (val - train = gap)" and plot.xlabel == "epoch"
    assert plot.lines == [(EPOCHS, col("train_err"), "train", None), (EPOCHS, col("val_err"), "val", None),
                          (EPOCHS, col("gap_err"), "gap", None)]
    assert plot.bands == [] and plot.vlines == [] and plot.hlines == [] and plot.texts == []
    assert plot.yticks is None and plot.ylim is None and plot.ylabel is None and not plot.points
    assert plot.xlim == (1, 5) and plot.xticks == ([1, 2, 3, 4, 5],)


def test_the_loss_view_plots_train_and_val_loss():
    plot = run_plot(run_state(ROWS), "loss", False, 80)
    assert plot.title == "loss" and plot.yticks is None
    assert plot.lines == [(EPOCHS, col("train_loss"), "train", None), (EPOCHS, col("val_loss"), "val", None)]


def test_the_memorization_view_plots_clean_train_error_noisy_memorized_and_val_error():
    plot = run_plot(run_state(ROWS), "memorization", False, 80)
    assert plot.title == "memorization (label noise)"
    assert plot.lines == [(EPOCHS, col("train_clean_err"), "clean-train err", None),
                          (EPOCHS, col("noisy_memorized"), "noisy memorized", None),
                          (EPOCHS, col("val_err"), "val err", None)]


def test_log_loss_plots_log10_of_the_positive_losses_with_ticks_at_real_values():
    rows = [dict(r) for r in ROWS]
    rows[2]["train_loss"] = 0.0  # log10 of 0 does not exist: that point is left out
    plot = run_plot(run_state(rows), "loss", True, 80)
    assert plot.title == "loss (log10)"
    (txs, tys, tlabel, _), (vxs, vys, vlabel, _) = plot.lines
    assert (txs, tlabel, vxs, vlabel) == ([1.0, 2.0, 4.0, 5.0], "train", EPOCHS, "val")
    assert tys == approx_list([L(2.0), 0.0, L(0.2), -1.0]) and vys == approx_list([L(v) for v in col("val_loss")])
    assert plot.yticks == log10_ticks(-1.0, L(2.1))  # over every line: lowest train, highest val
    assert plot.yticks[1] == ["0.1", "0.2", "0.5", "1", "2"]


def test_log_loss_leaves_the_other_views_linear():
    for view in ("error", "memorization"):
        plain, logged = run_plot(run_state(ROWS), view, False, 80), run_plot(run_state(ROWS), view, True, 80)
        assert logged.title == plain.title and logged.lines == plain.lines and logged.yticks is None


def test_a_loss_that_is_never_positive_draws_nothing_on_a_log_axis():
    rows = [{"epoch": 1, "train_loss": 0.0, "val_loss": -1.0}, {"epoch": 2, "train_loss": 0.0, "val_loss": 0.0}]
    plot = run_plot(run_state(rows), "loss", True, 80)
    assert plot.lines == [] and plot.yticks is None and plot.xlim == (1, 2)


def test_the_ratt_bound_joins_the_error_view_only():
    rows = [dict(r, ratt_bound=0.6 + r["epoch"] / 100, ratt_random_err=0.9) for r in ROWS]
    plot = run_plot(run_state(rows), "error", False, 80)
    assert [label for _, _, label, _ in plot.lines] == ["train", "val", "gap", "RATT bound", "err on random labels"]
    assert plot.lines[3][1] == [0.61, 0.62, 0.63, 0.64, 0.65] and plot.lines[4][1] == [0.9] * 5
    assert [label for _, _, label, _ in run_plot(run_state(rows), "loss", False, 80).lines] == ["train", "val"]


def test_a_key_without_numbers_draws_no_line():
    rows = [{"epoch": 1, "train_err": 0.5, "val_err": None}, {"epoch": 2, "train_err": 0.4, "val_err": float("nan")}]
    plot = run_plot(run_state(rows), "error", False, 80)
    assert plot.lines == [([1.0, 2.0], [0.5, 0.4], "train", None)]


def seeds_rows(members=3):
    rows = []
    for r in ROWS:
        row = dict(r, members=members)
        for k in ("train_err", "val_err", "gap_err", "train_loss", "val_loss", "train_clean_err", "noisy_memorized"):
            row[k + "_min"], row[k + "_max"] = r[k] * 0.9, r[k] * 1.1
        rows.append(row)
    return rows


def test_a_seeds_run_draws_each_mean_over_its_dim_min_max_band():
    rows = seeds_rows()
    plot = run_plot(run_state(rows), "error", False, 80)
    assert plot.title == "error (val - train = gap) | 3 seeds: mean, band = min–max"
    assert [label for _, _, label, _ in plot.lines] == ["train", "val", "gap"]  # the means
    # min then max of each banded key, in its mean line's color at half brightness; the gap has none
    assert plot.bands == [(EPOCHS, col("train_err_min", rows), BAND_COLORS[0]),
                          (EPOCHS, col("train_err_max", rows), BAND_COLORS[0]),
                          (EPOCHS, col("val_err_min", rows), BAND_COLORS[1]),
                          (EPOCHS, col("val_err_max", rows), BAND_COLORS[1])]
    calls = drawn(plot)
    assert [c[2].get("color") for c in calls[:4]] == [BAND_COLORS[0]] * 2 + [BAND_COLORS[1]] * 2
    assert [c[2].get("label") for c in calls[4:7]] == ["train", "val", "gap"]


def test_a_seeds_memorization_view_bands_every_line_in_its_own_color():
    plot = run_plot(run_state(seeds_rows(2)), "memorization", False, 80)
    assert [b[2] for b in plot.bands] == [BAND_COLORS[0]] * 2 + [BAND_COLORS[1]] * 2 + [BAND_COLORS[2]] * 2
    assert plot.title.endswith(" | 2 seeds: mean, band = min–max")


def test_a_band_colour_follows_the_lines_drawn_so_far():
    # no train_clean_err at all: noisy memorized is the first line, so the first color
    rows = [{k: v for k, v in r.items() if not k.startswith("train_clean_err")} for r in seeds_rows()]
    plot = run_plot(run_state(rows), "memorization", False, 80)
    assert [label for _, _, label, _ in plot.lines] == ["noisy memorized", "val err"]
    assert [b[2] for b in plot.bands] == [BAND_COLORS[0]] * 2 + [BAND_COLORS[1]] * 2


def test_one_seed_or_a_missing_bound_draws_no_band():
    one = [dict(r, members=1) for r in seeds_rows()]
    plot = run_plot(run_state(one), "error", False, 80)
    assert plot.bands == [] and plot.title == "error (val - train = gap)"
    only_max = [{k: v for k, v in r.items() if not k.endswith("_min")} for r in seeds_rows()]
    plot = run_plot(run_state(only_max), "error", False, 80)
    assert plot.bands == [(EPOCHS, col("train_err_max", seeds_rows()), BAND_COLORS[0]),
                          (EPOCHS, col("val_err_max", seeds_rows()), BAND_COLORS[1])]
    assert plot.title.endswith("3 seeds: mean, band = min–max")


def test_a_seeds_log_loss_bands_are_logged_and_set_the_ticks_too():
    rows = seeds_rows()
    plot = run_plot(run_state(rows), "loss", True, 80)
    assert plot.bands[0][1] == approx_list([L(v) for v in col("train_loss_min", rows)])
    # the band's extremes widen the axis: lowest train_loss_min, highest val_loss_max
    assert plot.yticks == log10_ticks(L(min(col("train_loss_min", rows))), L(max(col("val_loss_max", rows))))


def series_of(rows) -> RunSeries:
    s = RunSeries()
    for r in rows:
        s.add(dict(r))
    return s


def test_compared_runs_overlay_their_val_error_in_their_own_colours():
    a = series_of([{"epoch": e, "val_err": 0.6 - e / 100} for e in (1, 2, 3)])
    b = series_of([{"epoch": e, "val_err": 0.5} for e in (1, 2)])
    plot = run_plot(run_state(ROWS), "error", False, 80, [("lr=0.1", a), ("lr=1", b)], "(this run)")
    assert [(label, color) for _, _, label, color in plot.lines] == [
        ("train", None), ("val (this run)", None), ("gap", None),
        ("val_err lr=0.1", COMPARE_COLORS[0]), ("val_err lr=1", COMPARE_COLORS[1])]
    assert plot.lines[3][:2] == ([1.0, 2.0, 3.0], [0.59, 0.58, 0.57]) and plot.lines[4][:2] == ([1.0, 2.0], [0.5, 0.5])


def test_without_a_label_for_this_run_its_own_lines_keep_their_names():
    other = series_of([{"epoch": 1, "val_err": 0.3}])
    plot = run_plot(run_state(ROWS), "error", False, 80, [("lr=1", other)])
    assert [label for _, _, label, _ in plot.lines] == ["train", "val", "gap", "val_err lr=1"]
    assert [label for _, _, label, _ in run_plot(run_state(ROWS), "error", False, 80, [], "A").lines] == [
        "train", "val", "gap"]  # nothing compared: nothing to tell apart


@pytest.mark.parametrize("view, key, own", [("loss", "val_loss", ["train", "val *"]),
                                            ("memorization", "noisy_memorized",
                                             ["clean-train err", "noisy memorized *", "val err *"])])
def test_compared_runs_overlay_the_views_own_measure(view, key, own):
    other = series_of([{"epoch": 1, "val_err": 0.3, "val_loss": 0.7, "noisy_memorized": 0.2}])
    plot = run_plot(run_state(ROWS), view, False, 80, [("B", other)], "*")
    assert [label for _, _, label, _ in plot.lines] == own + [f"{key} B"]
    assert plot.lines[-1] == ([1.0], [{"val_loss": 0.7, "noisy_memorized": 0.2}[key]], f"{key} B", "cyan")


def test_compared_runs_keep_their_colour_when_one_has_nothing_to_show_and_stop_at_four():
    empty = series_of([{"epoch": 1, "train_err": 0.1}])
    full = series_of([{"epoch": 1, "val_err": 0.5}])
    compared = [("a", empty), ("b", full), ("c", full), ("d", full), ("e", full)]
    plot = run_plot(run_state(ROWS), "error", False, 80, compared, "")
    assert [(label, color) for _, _, label, color in plot.lines[3:]] == [
        ("val_err b", "magenta"), ("val_err c", "yellow"), ("val_err d", "white")]


def test_compared_runs_log_loss_is_logged_and_drops_non_positive_losses():
    other = series_of([{"epoch": 1, "val_loss": 100.0}, {"epoch": 2, "val_loss": 0.0}])
    plot = run_plot(run_state(ROWS), "loss", True, 80, [("B", other)], "A")
    assert plot.lines[-1] == ([1.0], [2.0], "val_loss B", "cyan")
    assert plot.yticks == log10_ticks(-1.0, 2.0)  # the compared run's loss widens the axis


def test_the_epochs_that_matter_are_marked_best_stop_would_stop_then_tweaks():
    rows = [dict(r) for r in ROWS]
    rows[-1]["es_best_epoch"] = 3
    events = [{"event": "tweaked", "epoch": 2, "changes": {"lr": 0.1}}, {"event": "would_stop", "epoch": 4},
              {"event": "early_stop", "epoch": 5, "best_epoch": 3}, {"event": "tweaked", "changes": {}},
              {"event": "tweaked", "epoch": 4, "changes": {"patience": 9}}, {"event": "baseline", "epoch": 1}]
    plot = run_plot(run_state(rows, events), "loss", False, 80)
    assert plot.vlines == [(3, "green"), (5, "red"), (4, "orange"), (2, "gray"), (4, "gray")]
    assert plot.hlines == [] and plot.title == "loss"


def test_a_run_without_a_best_epoch_or_stop_marks_nothing():
    rows = [dict(r, es_best_epoch=None) for r in ROWS]
    assert run_plot(run_state(rows, [{"event": "started", "epoch": 1}]), "error", False, 80).vlines == []
    # only the newest row's best epoch counts
    rows = [dict(r) for r in ROWS]
    rows[2]["es_best_epoch"] = 2
    assert run_plot(run_state(rows), "error", False, 80).vlines == []


def test_the_error_view_draws_the_nonparametric_baselines_and_names_them_in_the_title():
    events = [{"event": "started", "device": "cpu"},
              {"event": "baseline", "baseline_knn_test_err": 0.3214, "baseline_ntk_test_err": 0.25},
              {"event": "baseline", "baseline_knn_test_err": "n/a", "baseline_ntk_test_err": None}]
    plot = run_plot(run_state(ROWS, events), "error", False, 200)
    assert plot.hlines == [(0.3214, "cyan"), (0.25, "magenta")]
    assert all(isinstance(y, float) for y, _ in plot.hlines)
    assert plot.title == ("error (val - train = gap) | k-NN test 0.321 (cyan line)"
                          " | NTK test 0.250 (magenta line)")
    assert [(c[0], c[1]) for c in drawn(plot) if c[0] == "hline"] == [("hline", (0.3214, "cyan")),
                                                                     ("hline", (0.25, "magenta"))]


def test_an_integer_baseline_is_drawn_as_a_number_and_other_views_draw_no_baseline():
    events = [{"event": "baseline", "baseline_ntk_test_err": 1}]
    plot = run_plot(run_state(ROWS, events), "error", False, 80)
    assert plot.hlines == [(1.0, "magenta")] and plot.title.endswith(" | NTK test 1.000 (magenta line)")
    for view in ("loss", "memorization"):
        assert run_plot(run_state(ROWS, events), view, False, 80).hlines == []


@pytest.mark.parametrize("last, ticks", [(1, [1, 2]), (2, [1, 2]), (3, [1, 2, 3]), (5, [1, 2, 3, 4, 5]),
                                         (9, [1, 3, 5, 7, 9]), (101, [1, 26, 51, 76, 101])])
def test_the_epoch_axis_runs_from_1_to_the_last_epoch_with_five_ticks_at_most(last, ticks):
    plot = run_plot(run_state([{"epoch": last, "train_err": 0.2}]), "error", False, 80)
    assert plot.xlim == (1, max(2, last)) and plot.xticks == (ticks,)


def test_before_the_first_epoch_the_axis_spans_the_configured_epochs():
    assert run_plot(run_state(epochs=30), "error", False, 80).xlim == (1, 30)
    assert run_plot(run_state(epochs=30), "error", False, 80).xticks == ([1, 8, 15, 23, 30],)
    assert run_plot(run_state(epochs=1), "error", False, 80).xlim == (1, 2)


def test_the_epoch_axis_reaches_the_longest_compared_run():
    longer = series_of([{"epoch": e, "val_err": 0.5} for e in range(1, 13)])
    empty = RunSeries()
    plot = run_plot(run_state(ROWS), "error", False, 80, [("B", longer), ("C", empty)], "")
    assert plot.xlim == (1, 12)
    plot = run_plot(run_state(ROWS), "error", False, 80, [("C", empty)], "")
    assert plot.xlim == (1, 5)
    plot = run_plot(run_state(epochs=40), "error", False, 80, [("B", longer)], "")
    assert plot.xlim == (1, 12)  # a compared run's epochs, before this run's first


@pytest.mark.parametrize("width, points", [(10, 80), (40, 80), (41, 82), (70, 140), (75, 150), (200, 150)])
def test_a_long_run_is_thinned_to_twice_the_plot_width_in_points(width, points):
    rows = [{"epoch": e, "train_err": 1.0 / e} for e in range(1, 151)]
    xs, ys, _, _ = run_plot(run_state(rows), "error", False, width).lines[0]
    assert len(xs) == len(ys) == points
    assert (xs[0], xs[-1]) == (1.0, 150.0)  # the ends survive


# ------------------------------------------------------------------------------------ sweep_plot
def width_sweep(values=(2, 4, 8), epoch=3, **cols) -> SweepState:
    """A running one-setting width sweep: one progress row of `cols` (lists aligned with values)."""
    sweep = SweepState.expecting("model.width", list(values))
    sweep.series.add_progress({"epoch": epoch, "values": list(values), **{k: list(v) for k, v in cols.items()}})
    return sweep


ERRS = {"train_err": [0.3, 0.0, 0.0], "val_err": [0.4, 0.3, 0.2], "test_err": [0.5, 0.6, 0.4]}
LOG_X = [L(2), L(4), L(8)]


def test_a_running_width_sweep_plots_its_errors_against_log_width_and_marks_the_threshold():
    plot = sweep_plot(width_sweep(**ERRS), 80)
    assert plot.lines == [(LOG_X, [0.3, 0.0, 0.0], "train err", "blue+"),
                          (LOG_X, [0.4, 0.3, 0.2], "val err", "green+"),
                          (LOG_X, [0.5, 0.6, 0.4], "test err", "red+")]
    assert plot.bands == [] and plot.hlines == [] and plot.points
    assert plot.title == "sweep: error against width (log x) | epoch 3 | interpolation threshold 4"
    assert (plot.xlabel, plot.ylabel) == ("model.width (log scale)", "error")
    assert plot.xticks == (LOG_X, ["2", "4", "8"])  # at the values, labelled with them
    assert plot.xlim == (pytest.approx(L(2) - 0.05), pytest.approx(L(8) + 0.05))
    assert plot.ylim == (0, pytest.approx(0.6 * 1.1 + 0.01))
    assert plot.vlines == [(L(4), "magenta")]
    assert plot.texts == [("interpolation threshold", L(4), pytest.approx(0.67 * 0.96), "magenta")]
    calls = drawn(plot)
    assert [c[0] for c in calls] == ["plot", "scatter"] * 3 + ["vline", "text", "xticks", "title", "xlabel",
                                                               "ylabel", "xlim", "ylim"]


def test_the_early_stopped_test_error_is_a_fourth_yellow_line():
    plot = sweep_plot(width_sweep(**ERRS, test_err_kept=[0.45, 0.5, 0.38]), 80)
    assert plot.lines[3] == (LOG_X, [0.45, 0.5, 0.38], "test err, early-stopped", "yellow")
    assert len(plot.lines) == 4


def test_a_wide_log_axis_is_padded_by_two_percent_of_its_span():
    sweep = width_sweep(values=(10, 100, 1000, 10000), test_err=[0.5, 0.4, 0.3, 0.2])
    plot = sweep_plot(sweep, 80)
    assert plot.xlim == (pytest.approx(0.94), pytest.approx(4.06))
    assert plot.xticks == ([1.0, 2.0, 3.0, 4.0], ["10", "100", "1000", "10000"])


def test_the_y_axis_starts_at_zero_and_reaches_a_tenth_above_the_highest_error_band_included():
    sweep = width_sweep(test_err=[0.5, 0.6, 0.4], test_err_min=[0.4, 0.5, 0.3], test_err_max=[0.7, 0.9, 0.5])
    assert sweep_plot(sweep, 80).ylim == (0, pytest.approx(0.9 * 1.1 + 0.01))


def seeds_sweep(meta=None) -> SweepState:
    cols = {}
    for k, v in ERRS.items():
        cols[k], cols[k + "_min"], cols[k + "_max"] = v, [x * 0.5 for x in v], [x + 0.1 for x in v]
    sweep = width_sweep(**cols, test_err_kept=[0.45, 0.5, 0.38])
    sweep.meta = meta
    return sweep


def test_a_stacked_seeds_sweep_draws_a_dim_band_under_each_error_line():
    plot = sweep_plot(seeds_sweep({"seeds": 5}), 200)
    assert plot.bands == [(LOG_X, [0.15, 0.0, 0.0], SWEEP_BAND_COLORS[0]),
                          (LOG_X, approx_list([0.4, 0.1, 0.1]), SWEEP_BAND_COLORS[0]),
                          (LOG_X, [0.2, 0.15, 0.1], SWEEP_BAND_COLORS[1]),
                          (LOG_X, approx_list([0.5, 0.4, 0.3]), SWEEP_BAND_COLORS[1]),
                          (LOG_X, [0.25, 0.3, 0.2], SWEEP_BAND_COLORS[2]),
                          (LOG_X, approx_list([0.6, 0.7, 0.5]), SWEEP_BAND_COLORS[2])]
    assert [label for _, _, label, _ in plot.lines] == ["train err", "val err", "test err", "test err, early-stopped"]
    assert plot.title == ("sweep: error against width (log x) | epoch 3 | 5 seeds: mean, band = min–max"
                          " | interpolation threshold 4")
    assert plot.ylim == (0, pytest.approx(0.7 * 1.1 + 0.01))
    assert drawn(plot)[0] == ("plot", (LOG_X, [0.15, 0.0, 0.0]), {"marker": "braille", "color": SWEEP_BAND_COLORS[0]})


def test_a_seeds_sweep_without_its_metadata_yet_says_k_seeds():
    assert "| K seeds: mean, band = min–max |" in sweep_plot(seeds_sweep(None), 200).title
    assert "| K seeds: mean" in sweep_plot(seeds_sweep({"param": "model.width"}), 200).title


SUMMARY = {"interpolation_threshold": 8, "interpolation_lost_at": None, "peak_value": 4, "peak_test_err": 0.6,
           "peak_prominence": 0.1, "dip_value": 2, "dip_test_err": 0.5}


def test_an_ended_sweep_titles_its_threshold_peak_and_dip_from_its_summary():
    sweep = width_sweep(**ERRS)
    sweep.summary = dict(SUMMARY)
    plot = sweep_plot(sweep, 200)
    # the summary's threshold (the final numbers'), not the live one; no epoch once ended
    assert plot.title == ("sweep: error against width (log x) | interpolation threshold 8"
                          " | test peak 0.600 @ 4, dip 0.500 @ 2")
    assert plot.vlines == [(L(8), "magenta")] and plot.texts[0][1] == L(8)


@pytest.mark.parametrize("changes", [{"peak_prominence": 0}, {"peak_prominence": None}, {"peak_value": None},
                                     {"peak_prominence": -0.2}])
def test_an_ended_sweep_without_a_standing_peak_names_none(changes):
    sweep = width_sweep(**ERRS)
    sweep.summary = dict(SUMMARY, **changes)
    assert sweep_plot(sweep, 200).title == "sweep: error against width (log x) | interpolation threshold 8"


def test_an_ended_sweep_that_stops_interpolating_says_where():
    sweep = SweepState.expecting("regularization.weight_decay", [0.001, 0.01, 0.1])
    sweep.series.add_final([{"value": v, "train_err": t, "test_err": 0.3} for v, t in
                            [(0.001, 0.0), (0.01, 0.0), (0.1, 0.2)]])
    sweep.summary = {"interpolation_threshold": 0.001, "interpolation_lost_at": 0.1, "peak_value": None}
    plot = sweep_plot(sweep, 200)
    assert plot.title == ("sweep: error against weight_decay (log x) | interpolation threshold 0.001"
                          " | stops interpolating at 0.1")
    assert plot.vlines == []  # a regularizer that fits from its first value has no threshold worth marking
    assert plot.xticks == ([-3.0, -2.0, -1.0], ["0.001", "0.01", "0.1"])


def test_an_ended_sweep_without_a_threshold_names_none_and_marks_none():
    sweep = width_sweep(train_err=[0.3, 0.2, 0.1], test_err=[0.5, 0.4, 0.3])
    sweep.summary = {"interpolation_threshold": None, "peak_value": None}
    plot = sweep_plot(sweep, 200)
    assert plot.title == "sweep: error against width (log x)" and plot.vlines == [] and plot.texts == []


def test_a_sweep_before_its_first_epoch_waits_on_an_axis_of_its_values():
    plot = sweep_plot(SweepState.expecting("model.width", [8, 2, 4]), 80)
    assert plot.title == "sweep: error against width (log x) | waiting for the first epoch"
    assert plot.lines == [] and plot.bands == [] and plot.vlines == [] and plot.texts == []
    assert plot.xticks == (LOG_X, ["2", "4", "8"]) and plot.ylim == (0, 1.0)


def test_a_sweep_with_no_values_at_all_plots_an_empty_unit_axis():
    plot = sweep_plot(SweepState(param="model.width"), 80)
    assert plot.title == "sweep: error against width | waiting for the first epoch"
    assert plot.xlabel == "model.width" and plot.xticks is None
    assert plot.xlim == (pytest.approx(-0.05), pytest.approx(1.05)) and plot.ylim == (0, 1.0)
    assert plot.vlines == []


def test_the_params_view_plots_the_same_errors_against_each_values_parameter_count():
    sweep = width_sweep(**ERRS, n_params=[100, 1000, 10000])
    plot = sweep_plot(sweep, 200, "sweep-params")
    assert plot.lines[2] == ([2.0, 3.0, 4.0], [0.5, 0.6, 0.4], "test err", "red+")
    assert plot.xlabel == "parameters (log scale)" and plot.ylabel == "error"
    assert plot.title == "sweep: error against parameter count (log x) | epoch 3 | interpolation threshold 4"
    # 80 columns (74 for the title): the threshold no longer fits and is left out, not cut
    assert sweep_plot(sweep, 80, "sweep-params").title == "sweep: error against parameter count (log x) | epoch 3"
    assert plot.xticks == ([2.0, 3.0, 4.0], ["100", "1000", "10000"])
    assert plot.vlines == [(3.0, "magenta")]  # the threshold at width 4's parameter count


def test_the_params_view_leaves_out_a_value_whose_parameter_count_is_not_known_yet():
    sweep = width_sweep(**ERRS)
    sweep.series.add_final([{"value": 2, "n_params": 100}, {"value": 8, "n_params": 10000}])
    plot = sweep_plot(sweep, 80, "sweep-params")
    assert plot.lines[2][:2] == ([2.0, 4.0], [0.5, 0.4])
    assert plot.xticks == ([2.0, 4.0], ["100", "10000"]) and plot.vlines == []  # width 4: no count, no line


def test_the_params_view_of_a_model_kind_sweep_is_numeric_not_categories():
    sweep = SweepState.expecting("model.kind", ["mlp", "cnn1d"])
    sweep.series.add_progress({"epoch": 1, "values": ["mlp", "cnn1d"], "test_err": [0.3, 0.2],
                               "n_params": [1000, 100]})
    plot = sweep_plot(sweep, 80, "sweep-params")
    assert plot.lines == [([3.0, 2.0], [0.3, 0.2], "test err", "red+")]  # in the sweep's order
    assert plot.xticks == ([2.0, 3.0], ["100", "1000"]) and plot.xlabel == "parameters (log scale)"


NORMS = {"weight_norm": [10.0, 100.0, 10000.0], "spectral_norm_product": [100.0, 0.0, 1000.0]}


def test_the_norms_view_plots_log10_of_the_norms_between_margins():
    sweep = width_sweep(**ERRS, **NORMS, train_err_min=[0.1, 0.0, 0.0], train_err_max=[0.4, 0.1, 0.1])
    plot = sweep_plot(sweep, 200, "sweep-norms")
    assert plot.lines == [(LOG_X, approx_list([1.0, 2.0, 4.0]), "weight norm", "cyan"),
                          ([L(2), L(8)], approx_list([2.0, 3.0]), "spectral norm product", "magenta")]  # 0: no log
    assert plot.bands == [] and plot.ylabel == "log10 norm"
    assert plot.title == "sweep: norms against width (log x) | epoch 3 | interpolation threshold 4"
    assert plot.ylim == (pytest.approx(1.0 - 0.15), pytest.approx(4.0 + 0.15))  # 5% of the span each side
    assert plot.texts == [("interpolation threshold", L(4), pytest.approx(0.85 + 3.3 * 0.96), "magenta")]


def test_a_norm_below_one_has_a_negative_log():
    plot = sweep_plot(width_sweep(**ERRS, weight_norm=[0.1, 0.5, 2.0]), 200, "sweep-norms")
    assert plot.lines == [(LOG_X, approx_list([-1.0, L(0.5), L(2.0)]), "weight norm", "cyan")]


def test_the_norms_view_keeps_a_minimum_margin_and_never_names_the_peak():
    sweep = width_sweep(**ERRS, weight_norm=[10.0, 10.0, 10.0])
    sweep.summary = dict(SUMMARY)
    plot = sweep_plot(sweep, 200, "sweep-norms")
    assert plot.ylim == (pytest.approx(0.95), pytest.approx(1.05))
    assert plot.title == "sweep: norms against width (log x) | interpolation threshold 8"


def test_the_norms_view_before_any_norm_spans_a_unit_axis():
    plot = sweep_plot(width_sweep(**ERRS), 200, "sweep-norms")
    assert plot.lines == [] and plot.ylim == (pytest.approx(-0.05), pytest.approx(1.05))
    assert plot.title == "sweep: norms against width (log x) | waiting for the first epoch | interpolation threshold 4"


def kind_sweep(train=(0.2, 0.0, 0.0), param="model.kind", values=("mlp", "cnn1d", "resnet18")) -> SweepState:
    sweep = SweepState.expecting(param, list(values))
    sweep.series.add_progress({"epoch": 2, "values": list(values), "train_err": list(train),
                               "test_err": [0.4, 0.3, 0.35]})
    return sweep


def test_a_choice_sweep_spaces_its_categories_evenly_with_a_named_tick_each():
    plot = sweep_plot(kind_sweep(), 80)
    assert plot.lines[0] == ([0.0, 1.0, 2.0], [0.2, 0.0, 0.0], "train err", "blue+")
    assert plot.xticks == ([0.0, 1.0, 2.0], ["mlp", "cnn1d", "resnet18"])
    assert plot.xlabel == "model.kind"
    assert plot.title == "sweep: error against kind | epoch 2 | interpolation threshold cnn1d"
    assert plot.xlim == (pytest.approx(-0.3), pytest.approx(2.3))
    assert plot.vlines == [(1.0, "magenta")]


def test_a_choice_sweep_that_fits_from_its_first_category_still_marks_it():
    plot = sweep_plot(kind_sweep(train=(0.0, 0.0, 0.0)), 80)
    assert plot.vlines == [(0.0, "magenta")] and plot.texts[0][1] == 0.0


def test_a_switch_sweep_is_categories_true_and_false():
    sweep = SweepState.expecting("data.augment", [False, True])
    sweep.series.add_progress({"epoch": 1, "values": [False, True], "test_err": [0.3, 0.25]})
    plot = sweep_plot(sweep, 80)
    assert plot.xticks == ([0.0, 1.0], ["false", "true"]) and plot.lines[0][0] == [0.0, 1.0]


@pytest.mark.parametrize("param, marked", [("noise.label_noise", False), ("regularization.dropout", False),
                                           ("optim.lr", False), ("early_stopping.patience", False),
                                           ("model.depth", True), ("data.n_train", True)])
def test_a_threshold_at_the_first_value_is_marked_only_for_a_size_sweep(param, marked):
    sweep = SweepState.expecting(param, [1, 2, 4])
    sweep.series.add_progress({"epoch": 1, "values": [1, 2, 4], "train_err": [0.0, 0.0, 0.0]})
    plot = sweep_plot(sweep, 200)
    assert "interpolation threshold 1" in plot.title  # named either way
    assert plot.vlines == ([(0.0, "magenta")] if marked else [])


def test_a_noise_sweep_that_fits_later_marks_its_threshold_on_a_linear_axis():
    sweep = SweepState.expecting("noise.label_noise", [0.0, 0.1, 0.2])
    sweep.series.add_progress({"epoch": 4, "values": [0.0, 0.1, 0.2], "train_err": [0.2, 0.0, 0.0],
                               "test_err": [0.2, 0.3, 0.4]})
    plot = sweep_plot(sweep, 80)
    assert plot.xlabel == "noise.label_noise"  # 0 has no log: a linear axis
    assert plot.title == "sweep: error against label_noise | epoch 4 | interpolation threshold 0.1"
    assert plot.lines[0][0] == [0.0, 0.1, 0.2] and plot.xticks == ([0.0, 0.1, 0.2], ["0", "0.1", "0.2"])
    assert plot.xlim == (pytest.approx(-0.05), pytest.approx(0.25)) and plot.vlines == [(0.1, "magenta")]


def test_a_threshold_the_log_axis_cannot_hold_is_not_marked():
    sweep = width_sweep(**ERRS)
    sweep.summary = {"interpolation_threshold": 0}  # (a summary from elsewhere: no log10 of 0)
    plot = sweep_plot(sweep, 200)
    assert plot.vlines == [] and plot.title.endswith("interpolation threshold 0")


def test_the_cursor_is_a_white_line_at_its_value_over_the_threshold():
    sweep = width_sweep(**ERRS)
    sweep.move(to=2)
    assert sweep_plot(sweep, 80).vlines == [(L(4), "magenta"), (L(8), "white")]
    sweep.move(to=0)
    assert sweep_plot(sweep, 80, "sweep-norms").vlines == [(L(4), "magenta"), (L(2), "white")]


# ------------------------------------------------------------------------------------ grid sweeps
def grid_sweep(param2="noise.label_noise", values2=(0.0, 0.2), **extra) -> SweepState:
    """A width x label noise grid: line 0 done to epoch 5, line 0.2 training (epoch 2)."""
    sweep = SweepState.expecting("model.width", [2, 4, 8], param2, list(values2))
    for v2, epoch, train, test in [(values2[0], 5, [0.2, 0.0, 0.0], [0.4, 0.3, 0.35]),
                                   (values2[1], 2, [0.5, 0.3, 0.0], [0.6, 0.55, 0.5])]:
        sweep.series.add_progress({"epoch": epoch, "values": [2, 4, 8], "values2": [v2] * 3, "train_err": train,
                                   "test_err": test, **{k: v[v2] for k, v in extra.items()}})
    return sweep


def test_a_grid_draws_one_labelled_test_error_line_per_second_value_over_its_dim_train_error():
    plot = sweep_plot(grid_sweep(), 200)
    assert plot.lines == [(LOG_X, [0.4, 0.3, 0.35], "label_noise = 0", GRID_COLORS[0][0]),
                          (LOG_X, [0.6, 0.55, 0.5], "label_noise = 0.2", GRID_COLORS[1][0])]
    assert plot.bands == [(LOG_X, [0.2, 0.0, 0.0], GRID_COLORS[0][1]), (LOG_X, [0.5, 0.3, 0.0], GRID_COLORS[1][1])]
    assert plot.title == ("sweep: test error against width (log x), one line per label_noise"
                          " | label_noise 0.2: epoch 2 | dim: train err | 0: fits from 4 | 0.2: fits from 8")
    assert plot.vlines == [] and plot.texts == []  # each line's threshold is in the title, not a line
    assert plot.ylim == (0, pytest.approx(0.6 * 1.1 + 0.01)) and plot.ylabel == "error"


def test_a_grid_wraps_around_its_colours_after_six_lines():
    values2 = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    sweep = SweepState.expecting("model.width", [2, 4], "noise.label_noise", values2)
    sweep.series.add_progress({"epoch": 1, "values": [2, 4] * 7, "values2": [v for v in values2 for _ in (1, 2)],
                               "test_err": [0.5] * 14})
    plot = sweep_plot(sweep, 80)
    assert [color for _, _, _, color in plot.lines] == [c for c, _ in GRID_COLORS] + [GRID_COLORS[0][0]]
    assert plot.bands == []  # no training error yet: nothing dim
    assert "dim: train err" not in plot.title


def test_an_ended_grid_titles_each_lines_threshold_and_peak_from_its_summary():
    sweep = grid_sweep()
    sweep.summary = {"lines": [
        {"value2": 0.0, "interpolation_threshold": 4, "peak_value": 8, "peak_prominence": 0.05},
        {"value2": 0.2, "interpolation_threshold": None, "peak_value": 4, "peak_prominence": 0.1}]}
    plot = sweep_plot(sweep, 200)
    assert plot.title == ("sweep: test error against width (log x), one line per label_noise"
                          " | dim: train err | 0: fits from 4, peak @ 8 | 0.2: peak @ 4")
    assert plot.vlines == []


@pytest.mark.parametrize("shape, part", [
    ({"interpolation_threshold": 2, "peak_value": 4, "peak_prominence": 0}, "0: fits from 2"),
    ({"interpolation_threshold": 2, "peak_value": 4, "peak_prominence": None}, "0: fits from 2"),
    ({"interpolation_threshold": 2, "peak_value": None, "peak_prominence": 0.3}, "0: fits from 2"),
    ({"interpolation_threshold": None, "peak_value": None}, None),
])
def test_an_ended_grid_line_names_only_a_standing_peak(shape, part):
    sweep = grid_sweep()
    sweep.summary = {"lines": [dict(shape, value2=0.0), {"value2": 0.2, "interpolation_threshold": 8}]}
    parts = sweep_plot(sweep, 300).title.split(" | ")
    assert parts[2:] == ([part] if part else []) + ["0.2: fits from 8"]


def test_an_ended_grid_without_line_shapes_names_the_thresholds_its_numbers_show():
    sweep = grid_sweep()
    sweep.summary = {"status": "stopped", "lines": [{"value2": 0.2, "interpolation_threshold": 4}]}
    assert sweep_plot(sweep, 300).title == ("sweep: test error against width (log x), one line per label_noise"
                                            " | dim: train err | 0: fits from 4 | 0.2: fits from 4")
    sweep.summary = {"status": "stopped", "lines": None}
    assert sweep_plot(sweep, 300).title.endswith(" | dim: train err | 0: fits from 4 | 0.2: fits from 8")


def test_a_grids_norms_view_plots_log10_of_each_lines_weight_norm_without_bands():
    sweep = grid_sweep(weight_norm={0.0: [10.0, 100.0, 1000.0], 0.2: [10.0, 0.0, 100.0]})
    plot = sweep_plot(sweep, 200, "sweep-norms")
    assert plot.lines == [(LOG_X, approx_list([1.0, 2.0, 3.0]), "label_noise = 0", "red+"),
                          ([L(2), L(8)], approx_list([1.0, 2.0]), "label_noise = 0.2", "blue+")]
    assert plot.bands == [] and plot.ylabel == "log10 norm"
    assert plot.title == ("sweep: weight norm against width (log x), one line per label_noise"
                          " | label_noise 0.2: epoch 2 | 0: fits from 4 | 0.2: fits from 8")
    assert plot.ylim == (pytest.approx(0.9), pytest.approx(3.1))


def test_a_grids_params_view_places_each_line_at_its_own_parameter_counts():
    sweep = grid_sweep("model.depth", (1, 2), n_params={1: [100, 1000, 10000], 2: [1000, 10000, 100000]})
    plot = sweep_plot(sweep, 200, "sweep-params")
    assert [(xs, label) for xs, _, label, _ in plot.lines] == [([2.0, 3.0, 4.0], "depth = 1"),
                                                                ([3.0, 4.0, 5.0], "depth = 2")]
    assert plot.xticks == ([2.0, 3.0, 4.0, 5.0], ["100", "1000", "10000", "100000"])
    assert plot.title.startswith("sweep: test error against parameter count (log x), one line per depth"
                                 " | depth 2: epoch 2")
    sweep.move(to=1, dy=1)  # the cursor on width 4 of the depth-2 line
    assert sweep_plot(sweep, 200, "sweep-params").vlines == [(4.0, "white")]
    sweep.move(dy=-1)
    assert sweep_plot(sweep, 200, "sweep-params").vlines == [(3.0, "white")]


def test_a_grid_followed_before_its_settings_are_known_names_its_second_value_value2():
    sweep = SweepState()  # progress rows came before sweep.json
    sweep.series.add_progress({"epoch": 3, "values": [2, 4], "values2": [0.1, 0.1], "test_err": [0.5, 0.4]})
    plot = sweep_plot(sweep, 200)
    assert [label for _, _, label, _ in plot.lines] == ["value2 = 0.1"]
    assert plot.title == "sweep: test error against width (log x), one line per value2 | value2 0.1: epoch 3"


# ------------------------------------------------------------------------------------ examples view
class Figure(Recorder):
    """A plotext figure with subplots: each subplot records its own calls."""

    def __init__(self):
        super().__init__()
        self.panels = {}

    def subplot(self, row, column):
        self.calls.append(("subplot", (row, column), {}))
        return self.panels.setdefault((row, column), Recorder())


HIST_LABELS = ["0", "1", "2", "3", "4", "5+", "never"]


def examples_stats(noisy_n=10, noisy_median=None):
    return {"epochs": 3,
            "clean": {"n": 90, "learned_by": [0.5, 0.8, 0.9], "kept_by": [0.3, 0.6, 0.9], "median_first": 2.0,
                      "events_mean": 0.25, "hist": [0.7, 0.2, 0.0, 0.0, 0.0, 0.0, 0.1]},
            "noisy": {"n": noisy_n, "learned_by": [0.0, 0.1, 0.4], "kept_by": [0.0, 0.0, 0.4],
                      "median_first": noisy_median, "events_mean": 1.5, "hist": [0.1, 0.2, 0.1, 0.0, 0.0, 0.0, 0.6]}}


def test_the_examples_view_draws_when_each_group_is_learned_and_how_often_it_is_forgotten():
    fig = Figure()
    examples_plot(examples_stats(), 200).fill(fig)
    assert fig.calls == [("subplots", (1, 2), {}), ("subplot", (1, 1), {}), ("subplot", (1, 2), {})]
    left, right = fig.panels[(1, 1)].calls, fig.panels[(1, 2)].calls
    assert left == [
        ("plot", ([1, 2, 3], [0.3, 0.6, 0.9]), {"marker": "braille", "color": (18, 105, 70)}),  # dim: for good
        ("plot", ([1, 2, 3], [0.0, 0.0, 0.4]), {"marker": "braille", "color": (121, 38, 38)}),
        ("plot", ([1, 2, 3], [0.5, 0.8, 0.9]), {"label": "clean (90)", "marker": "braille", "color": "green+"}),
        ("plot", ([1, 2, 3], [0.0, 0.1, 0.4]), {"label": "noisy (10)", "marker": "braille", "color": "red+"}),
        ("title", ("learned by epoch | median clean 2, noisy never | dim: for good",), {}),
        ("xlabel", ("epoch",), {}),
        ("ylim", (0, 1), {}),
    ]
    assert right == [
        ("multiple_bar", (HIST_LABELS, [[0.7, 0.2, 0.0, 0.0, 0.0, 0.0, 0.1], [0.1, 0.2, 0.1, 0.0, 0.0, 0.0, 0.6]]),
         {"labels": ["clean", "noisy"], "color": ["green+", "red+"]}),
        ("title", ("forgetting events | mean clean 0.25, noisy 1.50",), {}),
        ("xlabel", ("times forgotten (share of the group)",), {}),
    ]


def test_the_examples_view_leaves_out_an_empty_group_and_fits_its_titles_to_half_the_width():
    fig = Figure()
    examples_plot(examples_stats(noisy_n=0, noisy_median=2.5), 100).fill(fig)
    left, right = fig.panels[(1, 1)].calls, fig.panels[(1, 2)].calls
    assert [c[2].get("label") for c in left if c[0] == "plot"] == [None, "clean (90)"]
    assert left[2] == ("title", ("learned by epoch | median clean 2",), {})  # 44 columns: the rest left out
    assert right[0] == ("multiple_bar", (HIST_LABELS, [[0.7, 0.2, 0.0, 0.0, 0.0, 0.0, 0.1]]),
                        {"labels": ["clean"], "color": ["green+"]})
    assert right[1] == ("title", ("forgetting events | mean clean 0.25",), {})


@pytest.mark.parametrize("width, left_title, right_title", [
    (106, "learned by epoch | median clean 2, noisy 2.5", "forgetting events | mean clean 0.25, noisy 1.50"),
    (104, "learned by epoch | median clean 2, noisy 2.5", "forgetting events"),  # 46 columns each
    (100, "learned by epoch | median clean 2, noisy 2.5", "forgetting events"),
    (98, "learned by epoch", "forgetting events"),
    (20, "learned by epoch", "forgetting events"),
])
def test_the_examples_titles_drop_what_does_not_fit_their_half(width, left_title, right_title):
    fig = Figure()
    examples_plot(examples_stats(noisy_median=2.5), width).fill(fig)
    titles = [c[1][0] for side in ((1, 1), (1, 2)) for c in fig.panels[side].calls if c[0] == "title"]
    assert titles == [left_title, right_title]


@pytest.mark.parametrize("stats, message, title", [
    (None, None, "no examples.npz yet"),  # (no message given)
    (None, "", "no examples.npz yet"),
    (None, "this run keeps no examples (examples = false)", "this run keeps no examples (examples = false)"),
    ({"epochs": 0}, "", "no examples.npz yet"),
])
def test_the_examples_view_without_numbers_says_why(stats, message, title):
    fig = Figure()
    (examples_plot(stats, 80) if message is None else examples_plot(stats, 80, message)).fill(fig)
    assert fig.calls == [("title", (title,), {})]


# ------------------------------------------------------------------------------------ sweep edges
def test_a_sweep_title_fits_the_plot_width_less_its_frame():
    sweep = width_sweep(**ERRS)
    whole = "sweep: error against width (log x) | epoch 3 | interpolation threshold 4"  # 72 columns
    assert sweep_plot(sweep, 78).title == whole
    assert sweep_plot(sweep, 77).title == "sweep: error against width (log x) | epoch 3"


NOISES = [round(i * 0.05, 2) for i in range(21)]


@pytest.mark.parametrize("width, labels", [(31, ["0", "0.5", "1"]), (24, ["0", "0.5", "1"]), (23, ["0", "1"]),
                                           (16, ["0", "1"]), (8, ["0", "1"])])
def test_crowded_sweep_ticks_thin_out_to_about_one_per_eight_columns(width, labels):
    plot = sweep_plot(SweepState.expecting("noise.label_noise", NOISES), width)
    assert plot.xticks == ([float(x) for x in labels], labels)  # (31 columns: 3 ticks; never fewer than 2)


def test_sweep_ticks_that_do_not_crowd_are_at_every_value():
    plot = sweep_plot(SweepState.expecting("noise.label_noise", NOISES), 200)  # room for 25
    assert plot.xticks == (NOISES, [f"{x:g}" for x in NOISES])


def test_a_depth_sweep_from_zero_marks_its_threshold_at_zero_on_a_linear_axis():
    sweep = SweepState.expecting("model.depth", [0, 1, 2])
    sweep.series.add_progress({"epoch": 1, "values": [0, 1, 2], "train_err": [0.0, 0.0, 0.0]})
    plot = sweep_plot(sweep, 200)
    assert plot.xlabel == "model.depth" and plot.vlines == [(0.0, "magenta")]


def test_a_category_threshold_the_sweep_does_not_have_is_named_but_not_marked():
    sweep = kind_sweep()
    sweep.summary = {"interpolation_threshold": "transformer"}
    plot = sweep_plot(sweep, 200)
    assert plot.title.endswith("| interpolation threshold transformer") and plot.vlines == []


def test_a_summary_without_any_values_still_draws():
    sweep = SweepState(param="model.width", summary={"interpolation_threshold": 4})
    plot = sweep_plot(sweep, 200)
    assert plot.title == "sweep: error against width | waiting for the first epoch | interpolation threshold 4"
    assert plot.lines == [] and plot.xticks is None


def test_a_grid_on_a_linear_axis_says_so_in_its_title():
    sweep = SweepState.expecting("noise.label_noise", [0.0, 0.1, 0.2], "model.width", [4, 16])
    sweep.series.add_progress({"epoch": 2, "values": [0.0, 0.1, 0.2], "values2": [4, 4, 4],
                               "test_err": [0.3, 0.35, 0.4]})
    plot = sweep_plot(sweep, 200)
    assert plot.xlabel == "noise.label_noise" and plot.lines[0][:3] == ([0.0, 0.1, 0.2], [0.3, 0.35, 0.4], "width = 4")
    assert plot.title == "sweep: test error against label_noise, one line per width | width 4: epoch 2"
