"""The lab's words (tui/texts.py), line for line: the run's and the sweep's outcome, the status bar's
head, the patience meter and the sweep view's cursor line, each case written out as the lab shows
it (issue 26: these are the tests mutation testing leans on for texts.py). Pure: no app, no training."""

import os

import pytest

from gengap_tui.config import build
from gengap_tui.protocol import Epoch, Event, Progress, SweepMeta
from gengap_tui.tui.state import LabState, SweepState
from gengap_tui.tui.texts import (patience_text, point_text, recent_epoch_seconds, run_head, run_note, run_outcome,
                                  short_path, sweep_head, sweep_outcome)


def lab(*overrides):
    return LabState(build({"name": "exact"}, ["optim.epochs=80", "device=cpu", *overrides]))


# ------------------------------------------------------------------------------------ run_outcome
def test_no_summary_yet_is_no_outcome_line():
    assert run_outcome(None) == ""


@pytest.mark.parametrize("summary, line", [
    ({"status": "completed", "epochs_run": 80, "test_err": 0.123456},
     "[b]completed[/] after 80 epochs | test err 0.1235"),
    ({"status": "completed", "epochs_run": 1, "test_err": 0.5},  # one epoch, not "1 epochs"
     "[b]completed[/] after 1 epoch | test err 0.5000"),
    ({"status": "early_stopped", "epochs_run": 23, "test_err": 0.2, "restored_best": True, "best_epoch": 13},
     "[b]early_stopped[/] after 23 epochs | test err 0.2000 (kept epoch 13)"),
    ({"status": "early_stopped", "epochs_run": 23, "test_err": 0.2, "restored_best": False, "best_epoch": 13},
     "[b]early_stopped[/] after 23 epochs | test err 0.2000"),  # the last weights kept: no "kept epoch"
    # a finished run's reason is not news; a cut-short one's is what the user needs to read
    ({"status": "completed", "epochs_run": 5, "test_err": 0.3, "reason": "all epochs trained"},
     "[b]completed[/] after 5 epochs | test err 0.3000"),
    ({"status": "early_stopped", "epochs_run": 5, "test_err": 0.3, "reason": "patience ran out"},
     "[b]early_stopped[/] after 5 epochs | test err 0.3000"),
    ({"status": "cancelled", "epochs_run": 0, "test_err": None, "reason": "stopped by the user"},
     "[b]cancelled[/] after 0 epochs | stopped by the user"),
    ({"status": "diverged", "epochs_run": 6, "test_err": 0.9, "restored_best": True, "best_epoch": 4,
      "reason": "train_loss is nan at epoch 7"},
     "[b]diverged[/] after 6 epochs | test err 0.9000 (kept epoch 4) | train_loss is nan at epoch 7"),
    ({"status": "diverged", "epochs_run": 6, "reason": ""}, "[b]diverged[/] after 6 epochs"),  # no empty part
    # failed before its first epoch: the worker's and the session's summaries have no epoch count
    ({"status": "failed", "reason": "the training process failed: OSError: disk full"},
     "[b]failed[/] | the training process failed: OSError: disk full"),
    ({"status": "failed", "epochs_run": None, "reason": "RuntimeError: CUDA out of memory"},
     "[b]failed[/] | RuntimeError: CUDA out of memory"),
])
def test_the_run_outcome_says_status_epochs_test_error_and_why_it_ended(summary, line):
    assert run_outcome(summary) == line


@pytest.mark.parametrize("extra, tail", [
    # observe mode: the weights stopping would have kept against the final ones, each with its epoch
    ({"would_stop_test_err": 0.21, "would_stop_best_epoch": 12, "final_test_err": 0.25},
     " | stopping would have kept (epoch 12) 0.2100 vs final (epoch 40) 0.2500"),
    ({"would_stop_test_err": 0.21, "would_stop_best_epoch": 0, "final_test_err": 0.25},  # epoch 0 is an epoch
     " | stopping would have kept (epoch 0) 0.2100 vs final (epoch 40) 0.2500"),
    ({"would_stop_test_err": 0.21, "final_test_err": 0.25},
     " | stopping would have kept 0.2100 vs final (epoch 40) 0.2500"),
    ({"would_stop_test_err": 0.21, "would_stop_best_epoch": 12},  # no final number: no comparison
     " | stopping would have kept (epoch 12) 0.2100"),
    ({"would_stop_test_err": 0.21, "would_stop_best_epoch": 12, "final_test_err": "nan"},
     " | stopping would have kept (epoch 12) 0.2100"),
    ({"would_stop_test_err": None, "would_stop_best_epoch": 12, "final_test_err": 0.25}, ""),  # never would stop
])
def test_an_observing_run_weighs_what_stopping_would_have_kept_against_the_final_weights(extra, tail):
    summary = {"status": "completed", "epochs_run": 40, "test_err": 0.25, **extra}
    assert run_outcome(summary) == "[b]completed[/] after 40 epochs | test err 0.2500" + tail


def test_the_observed_comparison_comes_before_the_reason_of_a_cut_short_run():
    summary = {"status": "cancelled", "epochs_run": 30, "test_err": 0.25, "would_stop_test_err": 0.2,
               "would_stop_best_epoch": 9, "final_test_err": 0.25, "reason": "stopped by the user"}
    assert run_outcome(summary) == ("[b]cancelled[/] after 30 epochs | test err 0.2500 | stopping would have kept "
                                    "(epoch 9) 0.2000 vs final (epoch 30) 0.2500 | stopped by the user")


@pytest.mark.parametrize("extra, spread", [
    ({"members": 3, "test_err_min": 0.11, "test_err_max": 0.135},
     "test err 0.1234 ± 0.0100 (mean ± std of 3 seeds, 0.1100-0.1350)"),
    ({"test_err_members": [0.11, 0.12, 0.13, 0.14], "test_err_min": 0.11, "test_err_max": 0.14},
     "test err 0.1234 ± 0.0100 (mean ± std of 4 seeds, 0.1100-0.1400)"),  # counted from the members
    ({"members": 0, "test_err_members": [0.11, 0.14]}, "test err 0.1234 ± 0.0100 (mean ± std of 2 seeds)"),
    ({}, "test err 0.1234 ± 0.0100 (mean ± std of K seeds)"),  # how many is not said anywhere
    ({"members": 3, "test_err_min": 0.11}, "test err 0.1234 ± 0.0100 (mean ± std of 3 seeds)"),  # half a range
    ({"members": 3, "test_err_max": 0.135}, "test err 0.1234 ± 0.0100 (mean ± std of 3 seeds)"),
    ({"members": 3, "test_err_min": None, "test_err_max": 0.135}, "test err 0.1234 ± 0.0100 (mean ± std of 3 seeds)"),
])
def test_stacked_seeds_give_their_mean_std_and_range(extra, spread):
    summary = {"status": "completed", "epochs_run": 10, "test_err": 0.12344, "test_err_std": 0.01, **extra}
    assert run_outcome(summary) == "[b]completed[/] after 10 epochs | " + spread


def test_stacked_seeds_keep_the_kept_epoch_after_their_spread():
    summary = {"status": "early_stopped", "epochs_run": 10, "test_err": 0.2, "test_err_std": 0.0, "members": 2,
               "test_err_min": 0.2, "test_err_max": 0.2, "restored_best": True, "best_epoch": 4}
    assert run_outcome(summary) == ("[b]early_stopped[/] after 10 epochs | test err 0.2000 ± 0.0000 "
                                    "(mean ± std of 2 seeds, 0.2000-0.2000) (kept epoch 4)")


def test_a_std_that_is_not_a_number_is_an_ordinary_test_error():
    summary = {"status": "completed", "epochs_run": 10, "test_err": 0.2, "test_err_std": None, "members": 3}
    assert run_outcome(summary) == "[b]completed[/] after 10 epochs | test err 0.2000"


# ------------------------------------------------------------------------------------ sweep_outcome
def widths(*values, summary=None):
    sweep = SweepState.expecting("model.width", list(values))
    sweep.summary = summary
    return sweep


def test_no_sweep_or_no_summary_is_no_outcome_line():
    assert sweep_outcome(None) == ""
    assert sweep_outcome(widths(2.0, 4.0)) == ""


@pytest.mark.parametrize("summary, line", [
    ({"status": "completed", "wall_seconds": 61.6, "interpolation_threshold": 16.0, "peak_value": 8.0,
      "peak_test_err": 0.41, "dip_value": 4.0, "dip_test_err": 0.35, "peak_prominence": 0.06, "last_test_err": 0.3},
     "[b]sweep completed[/] in 62s | interpolation threshold width 16 | test err peak 0.4100 @ width 8 "
     "(dip 0.3500 @ 4) | last test err 0.3000"),
    ({"status": "completed", "wall_seconds": 5, "interpolation_threshold": 16.0, "peak_value": None,
      "peak_prominence": -0.02, "last_test_err": 0.3},
     "[b]sweep completed[/] in 5s | interpolation threshold width 16 | no test-error peak | last test err 0.3000"),
    # a candidate level with its dip or the last value is no peak (a peak stands strictly above both)
    ({"status": "completed", "interpolation_threshold": 16.0, "peak_value": 8.0, "peak_test_err": 0.35,
      "dip_value": 4.0, "dip_test_err": 0.35, "peak_prominence": 0.0, "last_test_err": 0.3},
     "[b]sweep completed[/] | interpolation threshold width 16 | no test-error peak | last test err 0.3000"),
    # fewer than 3 values with a test error: no candidate, nothing to say about a peak
    ({"status": "completed", "interpolation_threshold": None, "peak_value": None, "peak_prominence": None,
      "last_test_err": 0.3},
     "[b]sweep completed[/] | no value fit the training set (train err > 1%) | last test err 0.3000"),
    ({"status": "completed", "interpolation_threshold": 0.0, "last_test_err": None},  # a threshold of 0 is one
     "[b]sweep completed[/] | interpolation threshold width 0"),
    ({"status": "cancelled", "wall_seconds": "?", "interpolation_threshold": None, "reason": "stopped by the user"},
     "[b]sweep cancelled[/] | no value fit the training set (train err > 1%) | stopped by the user"),
    ({"status": "completed", "interpolation_threshold": 4.0, "reason": "all values trained"},
     "[b]sweep completed[/] | interpolation threshold width 4"),
    ({"status": "failed", "interpolation_threshold": None, "reason": ""},
     "[b]sweep failed[/] | no value fit the training set (train err > 1%)"),
])
def test_the_sweep_outcome_says_threshold_peak_dip_and_last_error(summary, line):
    assert sweep_outcome(widths(2.0, 4.0, 8.0, 16.0, summary=summary)) == line


def test_a_peak_without_its_prominence_is_not_claimed():
    summary = {"status": "completed", "interpolation_threshold": 4.0, "peak_value": 8.0, "peak_test_err": 0.4,
               "dip_value": 4.0, "dip_test_err": 0.3}
    assert sweep_outcome(widths(4.0, 8.0, summary=summary)) == "[b]sweep completed[/] | interpolation threshold width 4"


def test_the_outcome_names_the_swept_settings_leaf_and_its_values_as_written():
    sweep = SweepState.expecting("optim.lr", [0.1, 0.001, 0.0001])
    sweep.summary = {"status": "completed", "interpolation_threshold": 0.001, "peak_value": 0.001,
                     "peak_test_err": 0.5, "dip_value": 0.1, "dip_test_err": 0.4, "peak_prominence": 0.1}
    assert sweep_outcome(sweep) == ("[b]sweep completed[/] | interpolation threshold lr 0.001 | "
                                    "test err peak 0.5000 @ lr 0.001 (dip 0.4000 @ 0.1)")


def test_an_observing_sweep_gives_each_values_early_stopped_minus_final_test_error():
    sweep = widths(2.0, 4.0, 8.0, summary={"status": "completed", "interpolation_threshold": 8.0})
    sweep.series.add_progress({"epoch": 9, "values": [2.0, 4.0, 8.0], "test_err": [0.5, 0.4, 0.3],
                               "test_err_kept": [0.45, 0.42, 0.3]})
    assert sweep_outcome(sweep) == ("[b]sweep completed[/] | interpolation threshold width 8 | "
                                    "test err early-stopped − final: 2 -0.050, 4 +0.020, 8 +0.000")


def test_a_value_with_a_kept_error_but_no_final_one_is_left_out_of_the_differences():
    sweep = widths(2.0, 4.0, summary={"status": "cancelled", "interpolation_threshold": None})
    sweep.series.add_progress({"epoch": 3, "values": [2.0, 4.0], "test_err": [0.5, None],
                               "test_err_kept": [0.4, 0.3]})
    assert sweep_outcome(sweep) == ("[b]sweep cancelled[/] | no value fit the training set (train err > 1%) | "
                                    "test err early-stopped − final: 2 -0.100")
    sweep.series.latest[2.0].pop("test_err")
    assert sweep_outcome(sweep) == "[b]sweep cancelled[/] | no value fit the training set (train err > 1%)"


def grid(summary):
    sweep = SweepState.expecting("model.width", [4.0, 2.0], "regularization.label_noise", [0.0, 0.2])
    sweep.summary = summary
    return sweep


def test_a_grid_outcome_gives_each_lines_shape():
    lines = [{"value2": 0.0, "interpolation_threshold": 4.0, "peak_value": 4.0, "peak_test_err": 0.31,
              "dip_value": 2.0, "dip_test_err": 0.25, "peak_prominence": 0.04, "last_test_err": 0.2},
             {"value2": 0.2, "interpolation_threshold": None, "peak_value": None, "peak_prominence": -0.01,
              "last_test_err": 0.45},
             {"value2": 0.5, "interpolation_threshold": 8.0, "peak_value": 4.0, "peak_test_err": 0.5,
              "dip_value": 2.0, "dip_test_err": 0.5, "peak_prominence": 0, "last_test_err": "nan"}]
    sweep = grid({"status": "completed", "wall_seconds": 120.4, "lines": lines, "reason": "done"})
    assert sweep_outcome(sweep) == ("[b]sweep completed[/] in 120s | label_noise 0: fits from width 4, test err peak "
                                    "0.3100 @ 4 (dip 0.2500 @ 2), last 0.2000 | label_noise 0.2: never fits, last "
                                    "0.4500 | label_noise 0.5: fits from width 8")


@pytest.mark.parametrize("summary, line", [
    ({"status": "cancelled", "lines": None, "reason": "stopped by the user"},
     "[b]sweep cancelled[/] | stopped by the user"),
    ({"status": "cancelled", "lines": [{"value2": 0.0, "interpolation_threshold": 2.0}], "reason": "stopped"},
     "[b]sweep cancelled[/] | label_noise 0: fits from width 2 | stopped"),
    ({"status": "failed", "lines": [], "reason": ""}, "[b]sweep failed[/]"),
    ({"status": "completed", "wall_seconds": 0.4, "lines": [{"value2": 0.2, "peak_value": 4.0, "peak_test_err": 0.3,
                                                             "dip_value": 2.0, "dip_test_err": 0.2}]},
     "[b]sweep completed[/] in 0s | label_noise 0.2: never fits"),  # a peak needs its prominence
])
def test_a_grid_outcome_says_why_it_ended_unless_it_completed(summary, line):
    assert sweep_outcome(grid(summary)) == line


# ------------------------------------------------------------------------------------ point_text
def test_the_cursor_line_says_the_keys_before_there_is_a_point():
    assert point_text(None) == "[dim]←/→ a value, enter its curves[/]"
    assert point_text(widths(2.0, 4.0)) == "[dim]←/→ a value, enter its curves[/]"  # no cursor yet
    assert point_text(grid(None)) == "[dim]←/→ a value, ↑/↓ a line, enter its curves[/]"


def test_the_cursor_line_gives_the_points_numbers_in_a_fixed_order():
    sweep = widths(2.0, 4.0)
    sweep.series.add_progress({"epoch": 7, "values": [2.0, 4.0], "train_err": [0.2, 0.01], "val_err": [0.3, 0.2],
                               "test_err": [0.35, 0.25], "test_err_kept": [0.3, 0.2], "n_params": [1234, 5000.0]})
    assert sweep.move(to=0) == (2.0, None)
    assert point_text(sweep) == ("[b]▶ width 2[/]: train 0.200  val 0.300  test 0.350  test kept 0.300  1,234p  "
                                 "epoch 7  [dim]←/→ ⏎[/]")
    sweep.move(dx=1)
    assert point_text(sweep) == ("[b]▶ width 4[/]: train 0.010  val 0.200  test 0.250  test kept 0.200  5,000p  "
                                 "epoch 7  [dim]←/→ ⏎[/]")


@pytest.mark.parametrize("row, numbers", [
    ({"epoch": 3, "values": [2.0], "test_err": [0.4]}, "test 0.400  epoch 3"),
    ({"epoch": 3, "values": [2.0], "train_err": [0.1234], "n_params": [12]}, "train 0.123  12p  epoch 3"),
    ({"values": [2.0], "val_err": [0.5]}, "val 0.500"),
    ({"epoch": 4, "values": [2.0]}, "epoch 4"),
    ({"values": [2.0]}, "no numbers yet"),
])
def test_the_cursor_line_shows_only_the_numbers_the_point_has(row, numbers):
    sweep = widths(2.0)
    sweep.series.add_progress(row)
    sweep.move(to=0)
    assert point_text(sweep) == f"[b]▶ width 2[/]: {numbers}  [dim]←/→ ⏎[/]"


def test_a_point_not_trained_yet_has_no_numbers():
    sweep = widths(2.0, 4.0)
    sweep.move(to=-1)
    assert point_text(sweep) == "[b]▶ width 4[/]: no numbers yet  [dim]←/→ ⏎[/]"


def test_a_grid_point_names_both_settings_and_reads_its_own_numbers():
    sweep = grid(None)
    sweep.series.add_progress({"epoch": 5, "values": [2.0, 4.0], "values2": [0.2, 0.2], "test_err": [0.4, 0.3]})
    sweep.series.add_progress({"epoch": 6, "values": [2.0, 4.0], "values2": [0.0, 0.0], "test_err": [0.2, 0.1]})
    sweep.move(to=1)
    assert point_text(sweep) == "[b]▶ width 4, label_noise 0[/]: test 0.100  epoch 6  [dim]←/→ ⏎[/]"
    sweep.move(dy=1)
    assert point_text(sweep) == "[b]▶ width 4, label_noise 0.2[/]: test 0.300  epoch 5  [dim]←/→ ⏎[/]"


# ------------------------------------------------------------------------------------ sweep_head
def test_a_sweep_head_without_meta_uses_the_panels_epochs_and_dashes():
    sweep = widths(2.0, 4.0, 8.0)
    assert sweep_head(sweep, 50, live=True) == ("[b]sweep model.width[/] | device - | epoch -/50 | 0/3 values | "
                                                "- samples/s | ETA - | -")
    assert sweep_head(SweepState(), 7, live=True) == ("[b]sweep model.width[/] | device - | epoch -/7 | 0/- values | "
                                                      "- samples/s | ETA - | -")


def paced(config, seconds=0.4, epochs=10, summary=None):
    """A width sweep of three values told its meta (with `config`), then one epoch of all three in
    `seconds`: 7.5 value-epochs a second at 0.4 s."""
    state = lab()
    state.sweep = widths(2.0, 4.0, 8.0)
    meta = {"param": "model.width", "values": [2.0, 4.0, 8.0], "epochs": epochs, "device": "cpu"}
    if config is not None:
        meta["config"] = config
    state.apply(SweepMeta(meta), "sweep")
    state.apply(Progress({"epoch": 1, "values": [2.0, 4.0, 8.0], "train_err": [0.5, 0.4, 0.3],
                          "test_err": [0.6, 0.5, 0.4], "epoch_seconds": seconds}), "sweep")
    state.sweep.summary = summary
    return state.sweep


@pytest.mark.parametrize("config, pace", [
    ({"data": {"n_train": 1000}, "run": {"seeds": 2}}, "15,000 samples/s"),  # 7.5 x 1000 examples x 2 seeds
    ({"data": {"n_train": 1000}, "run": {}}, "7,500 samples/s"),  # one seed
    ({"data": {"n_train": 1000}}, "7,500 samples/s"),
    ({"data": {"n_train": 1000}, "run": {"seeds": None}}, "7,500 samples/s"),
    ({"data": {}, "run": {"seeds": 2}}, "- samples/s"),  # how many examples an epoch is: not known
    ({"data": None}, "- samples/s"),
    ({"data": {"n_train": 1000.0}}, "- samples/s"),
    ({}, "- samples/s"),
    ("not a config", "- samples/s"),
    (None, "- samples/s"),
])
def test_a_sweep_heads_pace_is_examples_a_second_over_all_values_and_seeds(config, pace):
    # 3 values x 10 epochs, 3 value-epochs trained: 27 left at 7.5 a second
    assert sweep_head(paced(config), 50, live=True) == (f"[b]sweep model.width[/] | cpu | epoch 1/10 | 3/3 values | "
                                                        f"{pace} | ETA 4s | -")


def test_a_sweep_heads_eta_is_for_the_value_epochs_left_while_it_trains():
    cfg = {"data": {"n_train": 100}}
    assert sweep_head(paced(cfg, seconds=3.0, epochs=100), 5, True).endswith("| 100 samples/s | ETA 297s | -")
    assert sweep_head(paced(cfg), 5, live=False).endswith("| ETA - | -")  # a finished sweep read back
    assert sweep_head(paced(cfg, summary={"status": "completed"}), 5, True).endswith("| ETA - | -")
    assert sweep_head(paced(cfg, epochs=1), 5, True).endswith("| ETA - | -")  # nothing left
    assert sweep_head(paced(cfg, epochs=None), 10, True).endswith("| 750 samples/s | ETA 4s | -")  # the panels'
    assert sweep_head(paced(cfg, epochs="10"), 10, True).endswith("| epoch 1/10 | 3/3 values | 750 samples/s | ETA - | -")


def test_a_paused_sweep_says_so_only_while_it_is_live():
    sweep = paced(None)
    sweep.paused = True
    assert sweep_head(sweep, 50, live=True) == ("[b]sweep model.width[/] | cpu | epoch 1/10 (paused) | 3/3 values | "
                                                "- samples/s | ETA 4s | -")
    assert sweep_head(sweep, 50, live=False) == ("[b]sweep model.width[/] | cpu | epoch 1/10 | 3/3 values | "
                                                 "- samples/s | ETA - | -")


def test_a_sweep_head_gives_the_sweep_directory_relative_to_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = widths(2.0)
    sweep.sweep_dir = tmp_path / "runs" / "s1"
    assert sweep_head(sweep, 5, live=True).endswith(f"| ETA - | {os.path.join('runs', 's1')}")


def grid_live(line_values2, epoch=4, meta_epochs=10):
    state = lab()
    state.sweep = grid(None)
    state.apply(SweepMeta({"param": "model.width", "values": [2.0, 4.0], "param2": "regularization.label_noise",
                           "values2": [0.0, 0.2], "epochs": meta_epochs, "device": "cuda:0",
                           "config": {"data": {"n_train": 50}}}), "sweep")
    state.apply(Progress({"epoch": epoch, "values": [2.0, 4.0], "values2": [line_values2] * 2,
                          "train_err": [0.3, 0.2], "epoch_seconds": 2.0}), "sweep")
    return state.sweep


def test_a_live_grid_head_says_which_line_trains_and_its_epoch():
    sweep = grid_live(0.2)
    # 2 x 2 points x 10 epochs = 40 value-epochs, 2 trained, at 1 a second
    assert sweep_head(sweep, 50, live=True) == ("[b]sweep model.width x regularization.label_noise[/] | cuda:0 | "
                                                "label_noise 0.2 (2/2): epoch 4/10 | 2/4 points | 50 samples/s | "
                                                "ETA 38s | -")
    assert sweep_head(grid_live(0.0, epoch=1), 50, live=True).split(" | ")[2] == "label_noise 0 (1/2): epoch 1/10"
    # read back: the grid's newest epoch, not a line's
    assert sweep_head(sweep, 50, live=False) == ("[b]sweep model.width x regularization.label_noise[/] | cuda:0 | "
                                                 "epoch 4/10 | 2/4 points | 50 samples/s | ETA - | -")


def test_a_grid_line_the_sweep_does_not_list_has_no_position():
    sweep = grid_live(0.5)
    assert sweep_head(sweep, 50, live=True).split(" | ")[2] == "label_noise 0.5 (3/3): epoch 4/10"  # remembered
    sweep.series.set_values([2.0, 4.0], [0.0, 0.2])  # sweep.json's lines, read after the progress row
    assert sweep_head(sweep, 50, live=True).split(" | ")[2] == "label_noise 0.5: epoch 4/10"


# ------------------------------------------------------------------------------------ run_head, run_note
def test_a_run_head_before_any_epoch_has_dashes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = lab()
    state.run.run_dir = tmp_path / "runs" / "r"
    assert run_head(state.run) == f"[b]exact[/] | device - | epoch -/80 | - samples/s | ETA - | {os.path.join('runs', 'r')}"


@pytest.mark.parametrize("rows, tail", [
    ([{"epoch": 20, "epoch_seconds": 0.5, "samples_per_s": 999.5}], "epoch 20/80 | 1,000 samples/s | ETA 30s"),
    ([{"epoch": 20, "epoch_seconds": 0.5, "samples_per_s": 0}], "epoch 20/80 | - samples/s | ETA 30s"),
    ([{"epoch": 20}], "epoch 20/80 | - samples/s | ETA -"),  # no epoch time yet: no ETA
    ([{"epoch": 0, "epoch_seconds": 0.5}], "epoch 0/80 | - samples/s | ETA -"),  # the baseline row
    ([{"epoch": 80, "epoch_seconds": 0.5}], "epoch 80/80 | - samples/s | ETA 0s"),
    ([{"epoch": 1, "epoch_seconds": 1.0}, {"epoch": 2, "epoch_seconds": 3.0}], "epoch 2/80 | - samples/s | ETA 156s"),
])
def test_a_run_heads_eta_is_the_epochs_left_at_the_recent_pace(rows, tail):
    state = lab()
    for row in rows:
        state.apply(Epoch(row))
    assert run_head(state.run) == f"[b]exact[/] | device - | {tail} | -"


def test_run_note_counts_seeds_only_when_there_are_several():
    state = lab()
    state.apply(Epoch({"epoch": 1, "members": 2}))
    assert run_note(state.run, "running") == "running | 2 seeds (mean, band = min–max)"
    state.apply(Epoch({"epoch": 2, "members": 1}))
    assert run_note(state.run, "paused") == "paused"


# ------------------------------------------------------------------------------------ recent_epoch_seconds
def test_recent_epoch_seconds_counts_the_last_ten_epochs_and_a_zero_time():
    state = lab()
    for e, t in enumerate([100.0] + [2.0] * 9 + [0.0], start=1):  # 11 epochs: the first is left out
        state.run.series.add({"epoch": e, "epoch_seconds": t})
    assert recent_epoch_seconds(state.run) == pytest.approx(18 / 10)


# ------------------------------------------------------------------------------------ patience_text
@pytest.mark.parametrize("patience, wait, head", [
    (1, 1, "patience 1/1 " + "█" * 20),
    (3, 1, "patience 1/3 " + "█" * 7 + "░" * 13),  # 6.67 cells round to 7
    (10, 10, "patience 10/10 " + "█" * 20),  # full, not over: no (+0)
    (10, 11, "patience 10/10 (+1) " + "█" * 20),
])
def test_the_patience_bar_fills_in_proportion_and_says_how_far_past(patience, wait, head):
    state = lab(f"early_stopping.patience={patience}")
    state.apply(Epoch({"epoch": 12, "es_wait": wait}))
    assert patience_text(state.run) == head + "  best -"


def test_a_row_without_a_wait_is_an_empty_bar():
    state = lab("early_stopping.patience=4", "early_stopping.monitor=val_err")
    state.apply(Epoch({"epoch": 1, "es_best": 0.5, "es_best_epoch": 1}))
    assert patience_text(state.run) == "patience 0/4 " + "░" * 20 + "  best val_err 0.5000 @ epoch 1"


def test_a_best_of_zero_is_a_best_value():
    state = lab("early_stopping.patience=4", "early_stopping.monitor=val_err")
    state.apply(Epoch({"epoch": 9, "es_wait": 2, "es_best": 0.0, "es_best_epoch": 7}))
    assert patience_text(state.run) == "patience 2/4 " + "█" * 10 + "░" * 10 + "  best val_err 0.0000 @ epoch 7"


def test_an_early_stop_outranks_a_would_stop():
    state = lab("early_stopping.patience=2")
    state.apply(Epoch({"epoch": 5, "es_wait": 2}))
    state.apply(Event({"event": "would_stop", "epoch": 4}))
    state.apply(Event({"event": "early_stop", "epoch": 5, "best_epoch": 3}))
    assert patience_text(state.run) == ("patience 2/2 " + "█" * 20 + "  best -\n"
                                        "[b red]EARLY STOP @ epoch 5 (kept epoch 3)[/]")


# ------------------------------------------------------------------------------------ short_path
def test_short_path_of_an_empty_path_is_empty_not_an_error():
    assert short_path("") == ""


def test_short_path_of_the_working_folder_is_a_dot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert short_path(tmp_path) == "."
    assert short_path(str(tmp_path / "a")) == "a"


def test_a_sweeps_eta_counts_down_to_its_last_value_epoch():
    state = lab()
    state.sweep = widths(2.0)
    state.apply(SweepMeta({"param": "model.width", "values": [2.0], "epochs": 2, "device": "cpu"}), "sweep")
    state.apply(Progress({"epoch": 1, "values": [2.0], "train_err": [0.5], "epoch_seconds": 3.0}), "sweep")
    assert sweep_head(state.sweep, 50, live=True).endswith("| 1/1 values | - samples/s | ETA 3s | -")  # 1 left


# ------------------------------------------------------------------------------------ names
def test_a_setting_named_without_its_section_is_shown_whole():
    """The lab shows a setting by its last dotted part (`model.width` -> `width`); a sweep.json
    that names a setting without its section (hand-written) shows that name as it is."""
    sweep = SweepState.expecting("width", [2.0, 4.0], "label_noise", [0.0, 0.2])
    sweep.series.add_progress({"epoch": 3, "values": [2.0], "values2": [0.2], "test_err": [0.4]})
    sweep.move(to=0)
    sweep.move(dy=1)
    assert point_text(sweep) == "[b]▶ width 2, label_noise 0.2[/]: test 0.400  epoch 3  [dim]←/→ ⏎[/]"
    assert sweep_head(sweep, 9, live=True).split(" | ")[2] == "label_noise 0.2 (2/2): epoch 3/9"
    sweep.summary = {"status": "completed", "lines": [{"value2": 0.2, "interpolation_threshold": 4.0}]}
    assert sweep_outcome(sweep) == "[b]sweep completed[/] | label_noise 0.2: fits from width 4"
    one = SweepState(param="width", summary={"status": "completed", "interpolation_threshold": 4.0})
    assert sweep_outcome(one) == "[b]sweep completed[/] | interpolation threshold width 4"


def test_a_grid_point_read_before_its_sweep_json_shows_its_line_by_value():
    """A sweep directory's progress rows can come before its sweep.json is read: the grid's second
    setting has no name yet, so its line is shown by its value alone."""
    state = lab()
    state.apply(Progress({"epoch": 2, "values": [4.0], "values2": [0.2], "test_err": [0.3]}), "sweep")
    state.sweep.move(to=0)
    assert point_text(state.sweep) == "[b]▶ width 4, 0.2[/]: test 0.300  epoch 2  [dim]←/→ ⏎[/]"
