"""The lab's state without an app (gengap_tui/tui/state.py): what each message of a run or a sweep
does to `LabState`, the run's tweak / restart decision and its derived numbers, the sweep view's
cursor, and the configs the lab opens a sweep directory or a comparison with. Pure and fast: no
Textual, no training."""

import copy
import json
from pathlib import Path

import pytest

from gengap_tui import presets
from gengap_tui.config import build
from gengap_tui.protocol import (TWEAK_FIELDS, Epoch, Error, Event, Progress, RunDir, Summary, SweepMeta, SweepRows,
                                 SweepSummary, Tweak, Warning)
from gengap_tui.tui.series import RunSeries, SweepSeries
from gengap_tui.tui.state import LabState, RunState, SweepState, load_compared, sweep_config


def cfg(*overrides):
    return build({}, list(overrides))


# ------------------------------------------------------------------------------ RunState
def test_a_run_state_starts_empty_live_and_unpaused():
    run = RunState()
    assert (run.cfg, run.summary, run.run_dir, run.paused, run.events, run.applied) == (None, None, None, False, [], {})
    assert run.series.rows == [] and run.live is True
    assert run.stop is None and run.device is None and run.seeds == 1


def test_a_run_state_records_the_tweakable_values_its_config_starts_with():
    run = RunState(cfg("optim.lr=0.02", "early_stopping.patience=7"))
    assert set(run.applied) == set(TWEAK_FIELDS)
    assert run.applied["optim.lr"] == 0.02 and run.applied["early_stopping.patience"] == 7
    assert run.applied["regularization.weight_decay"] == 0.0 and run.applied["early_stopping.observe"] is False


def test_each_run_state_has_its_own_rows_and_events():
    a, b = RunState(), RunState()
    a.events.append({"event": "started"})
    a.series.add({"epoch": 1})
    assert b.events == [] and b.series.rows == []


@pytest.mark.parametrize("edited,dotted,expected", [
    (["optim.lr=0.02"], "optim.lr", ("optim.lr", 0.02)),               # a live tweak, with its new value
    (["optim.lr=0.01"], "optim.lr", None),                              # back to the value in use: nothing
    (["early_stopping.patience=3"], "early_stopping.patience", ("early_stopping.patience", 3)),
    (["model.width=8"], "model.width", "restart"),                      # a run cannot change its model
    (["optim.epochs=5"], None, "restart"),                              # (a whole preset loaded: no field)
    ([], None, None),                                                   # the same config again
    (["sweep.values=[2,4]"], "sweep.values", None),                     # the sweep panel is no run's business
    (["optim.lr=0.05"], None, None),                                    # a tweakable value never asks for a restart
    (["optim.lr=0.05", "model.depth=3"], None, "restart"),              # ... but what else changed does
])
def test_an_edit_is_a_tweak_a_restart_or_nothing(edited, dotted, expected):
    run = RunState(cfg("optim.lr=0.01"))
    assert run.change(cfg("optim.lr=0.01", *edited), dotted) == expected


def test_a_tweak_is_judged_against_the_value_the_run_uses_now():
    run = RunState(cfg("optim.lr=0.01"))
    run.applied["optim.lr"] = 0.02  # (a tweak the run took)
    assert run.change(cfg("optim.lr=0.02"), "optim.lr") is None
    assert run.change(cfg("optim.lr=0.01"), "optim.lr") == ("optim.lr", 0.01)


def test_event_epoch_is_the_first_such_event_or_none():
    run = RunState(cfg())
    run.events += [{"event": "paused", "epoch": 2}, {"event": "would_stop", "epoch": 5},
                   {"event": "would_stop", "epoch": 9}]
    assert run.event_epoch("would_stop") == 5 and run.event_epoch("paused") == 2
    assert run.event_epoch("early_stop") is None


def test_the_stop_is_the_fired_and_the_kept_epoch_of_the_first_early_stop():
    run = RunState(cfg())
    run.events += [{"event": "would_stop", "epoch": 4, "best_epoch": 1}]
    assert run.stop is None  # (observe mode: it would have stopped; it did not)
    run.events += [{"event": "early_stop", "epoch": 12, "best_epoch": 7}, {"event": "early_stop", "epoch": 20}]
    assert run.stop == (12, 7)
    assert RunState(cfg(), events=[{"event": "early_stop", "epoch": 3}]).stop == (3, None)


def test_the_patience_in_force_is_the_configs_until_the_last_tweak_that_set_it():
    run = RunState(cfg("early_stopping.patience=10"))
    assert run.patience == 10
    run.events += [{"event": "tweaked", "changes": {"lr": 0.1}}, {"event": "tweaked"}]  # others: no change
    assert run.patience == 10
    run.events += [{"event": "tweaked", "changes": {"patience": 4}}, {"event": "started", "changes": {"patience": 1}},
                   {"event": "tweaked", "changes": {"patience": 6}}, {"event": "tweaked", "changes": {"lr": 1.0}}]
    assert run.patience == 6


def test_the_device_is_the_first_started_events():
    run = RunState(cfg(), events=[{"event": "tweaked", "device": "x"}, {"event": "started", "device": "cuda:1"},
                                  {"event": "started", "device": "cpu"}])
    assert run.device == "cuda:1"
    assert RunState(cfg(), events=[{"event": "started"}]).device is None


@pytest.mark.parametrize("members,seeds", [
    (None, 1), (1, 1), (2, 2), (5, 5), (3.0, 3), (0, 1), (-2, 1), (True, 1), ("4", 1),
])
def test_the_seeds_of_a_run_are_its_rows_members(members, seeds):
    run = RunState(cfg())
    run.series.add({"epoch": 1, "members": 7})
    run.series.add({"epoch": 2} if members is None else {"epoch": 2, "members": members})  # the last row says
    assert run.seeds == seeds


def test_a_run_is_live_until_its_summary():
    run = RunState(cfg())
    assert run.live
    run.summary = {"status": "completed"}
    assert not run.live


# ------------------------------------------------------------------------------ SweepState
def test_a_sweep_state_starts_on_width_with_no_cursor():
    sw = SweepState()
    assert (sw.param, sw.param2, sw.meta, sw.summary, sw.sweep_dir, sw.paused) == ("model.width", None, None, None,
                                                                                  None, False)
    assert (sw.cursor, sw.cursor_line, sw.system) == (None, 0, {})
    assert sw.series.values == [] and sw.point is None and sw.move(1) is None and sw.cursor is None
    assert SweepState().system is not sw.system


def test_a_sweep_expects_widths_in_ascending_order_and_other_values_as_given():
    sw = SweepState.expecting("model.width", [8, 2, 4])
    assert (sw.param, sw.param2, sw.series.values, sw.series.values2) == ("model.width", None, [2.0, 4.0, 8.0], [])
    sw = SweepState.expecting("regularization.weight_decay", [0.1, 0.0, 0.01])
    assert sw.param == "regularization.weight_decay" and sw.series.values == [0.1, 0.0, 0.01]


def test_a_grid_sweep_expects_its_lines_and_a_plain_one_ignores_them():
    sw = SweepState.expecting("model.width", [4, 2], "noise.label_noise", [0.2, 0.0])
    assert (sw.param2, sw.series.values, sw.series.values2) == ("noise.label_noise", [2.0, 4.0], [0.2, 0.0])
    sw = SweepState.expecting("model.width", [4, 2], "", [0.2, 0.0])  # (the panel's empty second setting)
    assert sw.param2 is None and sw.series.values2 == [] and sw.series.lines == [None]


def fitted(values=(2, 4, 8, 16), train_errs=(0.3, 0.05, 0.0, 0.0)):
    """A finished one-setting sweep whose third value is the first to fit (train error <= 1%)."""
    sw = SweepState.expecting("model.width", list(values))
    sw.series.add_final([{"value": v, "train_err": e, "test_err": 0.2} for v, e in zip(values, train_errs)])
    return sw


def test_the_first_relative_move_puts_the_cursor_on_the_interpolation_threshold():
    sw = fitted()
    assert sw.move(1) == (8.0, None) and sw.cursor == 2  # not one past it: the threshold itself
    assert sw.move(1) == (16.0, None)
    assert sw.move(-1) == (8.0, None)
    assert sw.move(-2) == (2.0, None)


def test_without_a_threshold_the_first_move_starts_at_the_first_value():
    sw = fitted(train_errs=(0.5, 0.4, 0.3, 0.2))
    assert sw.move(3) == (2.0, None) and sw.cursor == 0


def test_the_cursor_is_clamped_to_the_values():
    sw = fitted()
    sw.move()
    assert sw.move(10) == (16.0, None) and sw.cursor == 3
    assert sw.move(-10) == (2.0, None) and sw.cursor == 0
    assert sw.move(-1) == (2.0, None) and sw.cursor == 0


def test_a_move_of_nothing_leaves_a_placed_cursor_where_it_is():
    sw = fitted()
    assert sw.move() == (8.0, None)
    assert sw.move() == (8.0, None) and sw.move(dy=1) == (8.0, None) and sw.cursor == 2


@pytest.mark.parametrize("to,index", [(0, 0), (1, 1), (3, 3), (-1, 3), (-4, 0), (4, 0), (5, 1)])
def test_a_move_to_an_index_wraps_minus_one_to_the_last(to, index):
    sw = fitted()
    assert sw.move(to=to) == ([2.0, 4.0, 8.0, 16.0][index], None) and sw.cursor == index


def test_a_move_to_an_index_overrides_a_relative_move():
    sw = fitted()
    sw.move(to=1)
    assert sw.move(dx=1, to=0) == (2.0, None)


def grid():
    """A 3 x 2 grid (widths x label noise): the 0.2 line fits from width 4 on, the 0.0 line from 8."""
    sw = SweepState.expecting("model.width", [2, 4, 8], "noise.label_noise", [0.0, 0.2])
    sw.series.add_final([{"value": v, "value2": n, "train_err": e} for v, n, e in
                         [(2, 0.0, 0.5), (4, 0.0, 0.1), (8, 0.0, 0.0), (2, 0.2, 0.5), (4, 0.2, 0.0), (8, 0.2, 0.0)]])
    return sw


def test_a_grids_cursor_moves_along_a_line_and_between_lines_clamped():
    sw = grid()
    assert sw.move() == (8.0, 0.0)  # the first line's threshold
    assert sw.move(dy=1) == (8.0, 0.2)
    assert sw.move(dy=1) == (8.0, 0.2) and sw.cursor_line == 1
    assert sw.move(dx=-1, dy=-5) == (4.0, 0.0) and sw.cursor_line == 0


def test_a_grids_first_move_uses_the_threshold_of_the_line_the_cursor_is_on():
    sw = grid()
    sw.cursor_line = 1
    assert sw.move() == (4.0, 0.2)
    sw = grid()
    sw.cursor_line = 5  # past the lines (they changed): the last one's
    assert sw.move() == (4.0, 0.2) and sw.cursor_line == 1


def test_the_point_stays_inside_values_that_shrank():
    sw = fitted()
    sw.cursor, sw.cursor_line = 9, 4
    assert sw.point == (16.0, None)
    sw = grid()
    sw.cursor, sw.cursor_line = 7, 3
    assert sw.point == (8.0, 0.2)


def test_the_point_dir_is_the_points_run_directory_in_the_sweeps_directory(tmp_path):
    sw = fitted()
    sw.move()
    assert sw.point_dir() is None  # no directory yet (a sweep that has not sent it)
    assert sw.point_dir(tmp_path / "other") == tmp_path / "other" / "width-8"
    sw.sweep_dir = tmp_path / "sweep"
    assert sw.point_dir() == tmp_path / "sweep" / "width-8"
    assert sw.point_dir(tmp_path / "other") == tmp_path / "sweep" / "width-8"  # its own comes first
    sw = grid()
    sw.sweep_dir = str(tmp_path)  # (as a source may give it)
    sw.move(dy=1)
    assert sw.point_dir() == tmp_path / "width-8+label_noise-0.2"


def test_no_point_no_point_dir(tmp_path):
    sw = fitted()
    sw.sweep_dir = tmp_path
    assert sw.point is None and sw.point_dir() is None


# ------------------------------------------------------------------------------ LabState: a run's messages
def test_a_lab_state_starts_ready_with_the_run_of_its_config_and_no_sweep():
    c = cfg("optim.lr=0.02")
    state = LabState(c)
    assert state.status == "ready" and state.sweep is None and state.run.cfg is c
    assert state.run.applied["optim.lr"] == 0.02


def test_a_new_run_and_a_new_sweep_replace_the_old_with_their_status():
    state = LabState(cfg())
    state.apply(Epoch({"epoch": 1}))
    c = cfg("model.width=8")
    state.new_run(c, "starting: width 8")
    assert state.run.cfg is c and state.run.series.rows == [] and state.status == "starting: width 8"
    sw = SweepState.expecting("model.width", [2])
    state.new_sweep(sw, "starting sweep")
    assert state.sweep is sw and state.status == "starting sweep"


def test_a_run_dir_message_names_the_runs_directory():
    state = LabState(cfg())
    state.apply(RunDir("/tmp/runs/r1"))
    assert state.run.run_dir == Path("/tmp/runs/r1") and state.sweep is None
    state.apply(RunDir("/tmp/runs/r2"), "run")
    assert state.run.run_dir == Path("/tmp/runs/r2")


@pytest.mark.parametrize("status,after", [
    ("starting", "running"), ("starting: width 8", "running"), ("ready", "ready"),
    ("tweaked at epoch 3: {'lr': 0.1}", "tweaked at epoch 3: {'lr': 0.1}"), ("[b red]x[/]", "[b red]x[/]"),
])
def test_the_first_epoch_turns_starting_into_running_and_leaves_other_messages(status, after):
    state = LabState(cfg())
    state.status = status
    state.apply(Epoch({"epoch": 1, "train_err": 0.5}))
    assert state.status == after and state.run.series.rows == [{"epoch": 1, "train_err": 0.5}]


def test_events_are_kept_in_order_and_an_ordinary_one_leaves_the_status():
    state = LabState(cfg())
    state.status = "running"
    for e in ({"event": "started", "epoch": 0, "device": "cpu"}, {"event": "paused", "epoch": 2},
              {"event": "resumed", "epoch": 2}, {"event": "started", "gpu": {"index": 0}},
              {"event": "started", "gpu": "cuda:0"}):
        state.apply(Event(e))
    assert [e["event"] for e in state.run.events] == ["started", "paused", "resumed", "started", "started"]
    assert state.status == "running"


def test_a_tweak_says_what_changed_at_which_epoch():
    state = LabState(cfg())
    state.apply(Event({"event": "tweaked", "epoch": 7, "changes": {"lr": 0.1}}))
    assert state.status == "tweaked at epoch 7: {'lr': 0.1}"
    assert state.run.events == [{"event": "tweaked", "epoch": 7, "changes": {"lr": 0.1}}]


def test_a_warning_event_is_shown_in_yellow_as_text_not_markup():
    state = LabState(cfg())
    state.apply(Event({"event": "warning", "message": "GPU 0 [shared] is busy"}))
    assert state.status == "[b yellow]GPU 0 \\[shared] is busy[/]"


def test_the_gpu_auto_chose_is_said_when_the_run_starts():
    state = LabState(cfg())
    state.apply(Event({"event": "started", "gpu": {"chosen": "cuda:1: the most free memory (70 GiB)"}}))
    assert state.status == "cuda:1: the most free memory (70 GiB)"
    state.status = "running"
    state.apply(Event({"event": "started", "gpu": {"chosen": ""}}))
    assert state.status == "running"


def test_a_failed_checkpoint_is_a_warning_and_the_run_goes_on():
    state = LabState(cfg())
    state.apply(Event({"event": "checkpoint_failed", "epoch": 4, "error": "OSError: [Errno 28] full"}))
    assert state.status == "[b yellow]checkpoint not saved after epoch 4: OSError: \\[Errno 28] full[/] (the run goes on)"
    assert state.run.live


@pytest.mark.parametrize("summary,status", [
    ({"status": "early_stopped", "test_err": 0.2}, "early_stopped"), ({"status": "cancelled"}, "cancelled"),
    ({"test_err": 0.2}, "finished"),
])
def test_the_summary_ends_the_run_with_its_status(summary, status):
    state = LabState(cfg())
    state.apply(Summary(summary))
    assert state.run.summary == summary and state.status == status and not state.run.live


def test_an_error_is_red_and_a_warning_yellow():
    state = LabState(cfg())
    state.apply(Error("data.n_train = 0: must be at least 1"))
    assert state.status == "[b red]data.n_train = 0: must be at least 1[/]"
    state.apply(Warning("tweak refused: lr = -1"))
    assert state.status == "[b yellow]tweak refused: lr = -1[/]"


def test_a_run_ignores_messages_only_a_sweep_sends():
    state = LabState(cfg())
    state.status = "running"
    for msg in (Progress({"epoch": 1, "values": [2.0], "train_err": [0.1]}), SweepRows([{"value": 2.0}]),
                SweepMeta({"param": "model.width"}), SweepSummary({"status": "completed"}), Tweak({"lr": 0.1})):
        state.apply(msg)
    assert state.status == "running" and state.sweep is None and state.run.events == []
    assert state.run.series.rows == [] and state.run.summary is None


# ------------------------------------------------------------------------------ LabState: a sweep's messages
def test_a_sweep_message_before_the_sweep_state_makes_one():
    state = LabState(cfg())
    state.apply(RunDir("/tmp/sweeps/s1"), "sweep")
    assert isinstance(state.sweep, SweepState) and state.sweep.sweep_dir == Path("/tmp/sweeps/s1")
    assert state.run.run_dir is None
    sw = state.sweep
    state.apply(RunDir("/tmp/sweeps/s2"), "sweep")
    assert state.sweep is sw and sw.sweep_dir == Path("/tmp/sweeps/s2")


def test_a_sweeps_error_says_sweep_and_its_warning_is_yellow():
    state = LabState(cfg())
    state.apply(Error("no values"), "sweep")
    assert state.status == "[b red]sweep: no values[/]"
    state.apply(Warning("unit 3 retried"), "sweep")
    assert state.status == "[b yellow]unit 3 retried[/]"


def test_sweep_meta_sets_the_params_and_values():
    state = LabState(cfg())
    state.new_sweep(SweepState.expecting("model.width", [2, 4]), "starting")
    meta = {"param": "regularization.weight_decay", "values": [0.1, 0.0], "epochs": 5}
    state.apply(SweepMeta(meta), "sweep")
    sw = state.sweep
    assert sw.meta == meta and sw.param == "regularization.weight_decay" and sw.param2 is None
    assert sw.series.values == [0.1, 0.0] and sw.series.values2 == []


def test_sweep_meta_of_a_grid_sets_its_lines():
    state = LabState(cfg())
    state.apply(SweepMeta({"param": "model.width", "values": [2, 4], "param2": "noise.label_noise",
                           "values2": [0.0, 0.2]}), "sweep")
    sw = state.sweep
    assert (sw.param, sw.param2, sw.series.values, sw.series.values2) == ("model.width", "noise.label_noise",
                                                                          [2.0, 4.0], [0.0, 0.2])


def test_sweep_meta_without_a_second_setting_takes_no_lines_and_keeps_what_it_does_not_say():
    state = LabState(cfg())
    state.new_sweep(SweepState.expecting("model.depth", [1, 2], "noise.label_noise", [0.1]), "starting")
    state.apply(SweepMeta({"param2": "", "values2": [0.5]}), "sweep")  # (an older sweep.json)
    sw = state.sweep
    assert sw.param == "model.depth" and sw.param2 is None
    assert sw.series.values == [1.0, 2.0]  # no values in the meta: the expected ones stay
    state.apply(SweepMeta({"param": "model.depth", "values": [3], "values2": [0.5]}), "sweep")
    assert sw.series.values == [3.0] and sw.series.values2 == [0.1]  # no param2: values2 is not a grid's


@pytest.mark.parametrize("status,after", [
    ("starting sweep", "sweeping"), ("following s1", "sweeping"), ("ready", "ready"), ("sweep paused", "sweep paused"),
])
def test_progress_updates_the_points_and_turns_starting_or_following_into_sweeping(status, after):
    state = LabState(cfg())
    state.new_sweep(SweepState.expecting("model.width", [2, 4]), status)
    state.apply(Progress({"epoch": 3, "values": [2.0, 4.0], "train_err": [0.3, 0.1]}), "sweep")
    assert state.status == after
    assert state.sweep.series.latest == {2.0: {"train_err": 0.3, "epoch": 3}, 4.0: {"train_err": 0.1, "epoch": 3}}
    assert state.sweep.system == {}  # a row without the system fields


def test_progress_with_system_fields_is_the_system_line():
    state = LabState(cfg())
    row = {"epoch": 1, "values": [2.0], "train_err": [0.3], "cpu_percent": 180.0, "rss_mb": 900.0}
    state.apply(Progress(row), "sweep")
    assert state.sweep.system == row
    state.apply(Progress({"epoch": 2, "values": [2.0], "train_err": [0.2]}), "sweep")
    assert state.sweep.system == row  # the last line that had them


def test_sweep_rows_are_the_final_numbers():
    state = LabState(cfg())
    state.apply(Progress({"epoch": 3, "values": [2.0], "train_err": [0.3]}), "sweep")
    state.apply(SweepRows([{"value": 2.0, "train_err": 0.25, "test_err": 0.4, "epochs_run": 9}]), "sweep")
    assert state.sweep.series.latest[2.0] == {"train_err": 0.25, "test_err": 0.4, "epoch": 9}


@pytest.mark.parametrize("summary,status", [
    ({"status": "completed"}, "sweep completed"), ({}, "sweep finished"),
    ({"status": "cancelled", "reason": "stopped by the user"}, "sweep cancelled: stopped by the user"),
    ({"status": "failed", "reason": ""}, "sweep failed"),
])
def test_the_sweep_summary_ends_it_with_its_status_and_reason(summary, status):
    state = LabState(cfg())
    state.apply(SweepSummary(summary), "sweep")
    assert state.sweep.summary == summary and state.status == status


def test_a_sweep_ignores_messages_only_a_run_sends():
    state = LabState(cfg())
    state.new_sweep(SweepState.expecting("model.width", [2]), "sweeping")
    for msg in (Epoch({"epoch": 1}), Event({"event": "tweaked", "epoch": 1, "changes": {}}), Summary({"status": "x"})):
        state.apply(msg, "sweep")
    assert state.status == "sweeping" and state.run.series.rows == [] and state.run.events == []
    assert state.run.summary is None and state.sweep.summary is None


# ------------------------------------------------------------------------------ load_compared
def write_run(root: Path, name: str, config: dict | None, rows=()) -> str:
    d = root / name
    d.mkdir()
    if config is not None:
        (d / "config.json").write_text(json.dumps(config))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(d)


def test_compared_runs_are_labelled_by_the_settings_that_tell_them_apart(tmp_path):
    base = cfg().dump()
    wd = copy.deepcopy(base)
    wd["regularization"]["weight_decay"] = 0.01
    wd["torch_version"] = "2.13.0+cpu"  # (what a run adds to its config.json: not a setting)
    older = {k: v for k, v in copy.deepcopy(base).items() if k not in ("run", "ratt")}  # before those existed
    older["regularization"] = {"dropout": 0.3}
    rows = [{"epoch": 1, "train_err": 0.5}, {"epoch": 2, "train_err": 0.25}]
    dirs = [write_run(tmp_path, "wd", wd, rows), write_run(tmp_path, "older", older)]
    compared, this = load_compared(dirs, cfg())
    assert [label for label, _ in compared] == ["dropout=0 wd=0.01", "dropout=0.3 wd=0"]
    assert this == "dropout=0 wd=0"
    assert isinstance(compared[0][1], RunSeries) and compared[0][1].rows == rows
    assert compared[0][1].get("train_err") == ([1.0, 2.0], [0.5, 0.25]) and compared[1][1].rows == []


def test_a_compared_run_whose_config_does_not_validate_is_labelled_as_recorded(tmp_path):
    bad = cfg().dump()
    bad["model"]["width"] = -1
    bad["device_name"] = "CPU"
    partial = {"model": {"width": 0}}  # not valid either: compared by what it says
    compared, this = load_compared([write_run(tmp_path, "bad", bad), write_run(tmp_path, "partial", partial)],
                                   cfg("model.width=8"))
    labels = [label for label, _ in compared]
    assert labels[0].startswith("width=-1 ") and labels[1].startswith("width=0 ") and this.startswith("width=8 ")
    assert "device_name" not in " ".join(labels)


def test_runs_set_up_like_this_one_are_told_apart_by_their_directory_names(tmp_path):
    dirs = [write_run(tmp_path, name, cfg("optim.epochs=30").dump()) for name in ("r1", "r2")]
    compared, this = load_compared(dirs, cfg())  # (the epochs tell no run apart: not a setting compared)
    assert [label for label, _ in compared] == ["r1", "r2"] and this == "this run"


def test_what_is_not_a_run_is_left_out_of_the_comparison(tmp_path):
    ok = write_run(tmp_path, "ok", cfg("model.width=8").dump(), [{"epoch": 1}])
    dirs = [str(tmp_path / "gone"), write_run(tmp_path, "no-config", None), ok]
    compared, this = load_compared(dirs, cfg())
    assert [label for label, _ in compared] == ["width=8"] and this == "width=256"
    assert load_compared([str(tmp_path / "gone")], cfg()) == ([], "")
    assert load_compared([], cfg()) == ([], "")


# ------------------------------------------------------------------------------ sweep_config
def write_sweep(root: Path, meta: dict | None) -> Path:
    d = root / "sweep"
    d.mkdir()
    if meta is not None:
        (d / "sweep.json").write_text(json.dumps(meta))
    return d


def recorded(*overrides):
    raw = cfg(*overrides).dump()
    raw["torch_version"] = "2.13.0+cpu"  # (not a setting: left out)
    return raw


def test_a_sweep_directory_opens_with_the_config_it_was_made_with_and_what_it_swept(tmp_path):
    d = write_sweep(tmp_path, {"param": "model.width", "values": [2, 4], "config": recorded("optim.epochs=7")})
    raw, c, note = sweep_config(d, "label-noise")
    assert note == "" and "torch_version" not in raw
    assert raw["sweep"] == {"param": "model.width", "values": [2, 4], "param2": "", "values2": []}
    assert c.optim.epochs == 7 and c.sweep.values == [2, 4] and c.sweep.param2 == ""


def test_a_grid_sweep_directory_opens_with_both_settings(tmp_path):
    d = write_sweep(tmp_path, {"param": "model.width", "values": [2, 4], "param2": "noise.label_noise",
                               "values2": [0.0, 0.2], "config": recorded()})
    raw, c, note = sweep_config(d, "label-noise")
    assert raw["sweep"] == {"param": "model.width", "values": [2, 4], "param2": "noise.label_noise",
                            "values2": [0.0, 0.2]}
    assert note == "" and c.sweep.param2 == "noise.label_noise" and c.sweep.values2 == [0.0, 0.2]


def test_values2_without_a_second_setting_are_not_a_grid(tmp_path):
    d = write_sweep(tmp_path, {"param": "model.width", "values": [2], "param2": None, "values2": [0.1],
                               "config": recorded()})
    raw, _, note = sweep_config(d, "label-noise")
    assert raw["sweep"] == {"param": "model.width", "values": [2], "param2": "", "values2": []} and note == ""


@pytest.mark.parametrize("meta", [{"values": [2, 4]}, {"param": "model.width"}, {"param": "model.width", "values": 4},
                                  {"param": "", "values": [2]}])
def test_a_sweep_json_that_does_not_say_what_was_swept_keeps_the_configs_sweep(tmp_path, meta):
    config = recorded("sweep.param=model.depth", "sweep.values=[1,3]")
    raw, c, note = sweep_config(write_sweep(tmp_path, {**meta, "config": config}), "label-noise")
    assert raw["sweep"] == config["sweep"] and (c.sweep.param, c.sweep.values) == ("model.depth", [1, 3])
    assert note == ""


@pytest.mark.parametrize("meta", [None, {"param": "model.width", "values": [2]}, {"config": "width 8"}])
def test_without_a_recorded_config_the_panels_show_the_preset(tmp_path, meta):
    raw, c, note = sweep_config(write_sweep(tmp_path, meta), "label-noise")
    assert raw == presets.load_raw("label-noise") and c == build(presets.load_raw("label-noise"))
    assert c.name == "label-noise" and note == ""


def test_a_recorded_config_that_does_not_validate_here_falls_back_to_the_preset_and_says_why(tmp_path):
    bad = recorded()
    bad["model"]["width"] = -1
    d = write_sweep(tmp_path, {"param": "model.width", "values": [2], "config": bad})
    raw, c, note = sweep_config(d, "label-noise")
    assert raw == presets.load_raw("label-noise") and c.name == "label-noise"
    assert note.startswith(f"the sweep's config does not validate here (invalid config ({d / 'sweep.json'}):")
    assert "model.width = -1" in note and note.endswith("): the panels show label-noise")


def test_a_grid_without_its_second_values_does_not_validate(tmp_path):
    d = write_sweep(tmp_path, {"param": "model.width", "values": [2], "param2": "noise.label_noise",
                               "config": recorded()})
    _, c, note = sweep_config(d, "default")
    assert "sweep.values2: empty" in note and c.name == "default"


def test_sweep_series_of_a_fresh_state_are_separate():
    a, b = SweepState(), SweepState()
    assert isinstance(a.series, SweepSeries) and a.series is not b.series
