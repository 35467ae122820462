"""The lab's pure parts (protocol, control, config, runs, tui/state, plots, texts, early stopping),
checked value by value: these are the tests mutation testing (bench/mutation.sh) leans on."""

import os
from pathlib import Path

import pytest

from gengap_tui.config import build
from gengap_tui.protocol import Epoch, Event, Progress, RunDir, Summary, SweepMeta, SweepSummary
from gengap_tui.tui.state import LabState, SweepState
from gengap_tui.tui.texts import (patience_text, recent_epoch_seconds, run_head, run_note, short_path,
                                  sweep_head, sweep_outcome)


def lab(*overrides):
    return LabState(build({"name": "pure"}, ["optim.epochs=80", "device=cpu", *overrides]))


# ------------------------------------------------------------------------------------ texts
def test_short_path_is_relative_inside_the_working_folder_and_absolute_outside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert short_path(tmp_path / "runs" / "a") == os.path.join("runs", "a")
    assert short_path(tmp_path.parent / "b") == str(tmp_path.parent / "b")


def test_recent_epoch_seconds_is_the_mean_of_the_last_epochs_own_times():
    state = lab()
    assert recent_epoch_seconds(state.run) is None
    for e, t in enumerate([9.0, 1.0, 2.0, 3.0, True, -1.0, "x"], start=1):
        state.run.series.add({"epoch": e, "epoch_seconds": t})
    assert recent_epoch_seconds(state.run) == pytest.approx((9 + 1 + 2 + 3) / 4)  # bools, negatives, text left out
    assert recent_epoch_seconds(state.run, n=5) == pytest.approx((2 + 3) / 2)  # the last 5 rows only


def test_run_head_names_the_preset_device_epoch_pace_eta_and_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = lab()
    assert run_head(state.run) == "[b]pure[/] | device - | epoch -/80 | - samples/s | ETA - | -"
    state.apply(RunDir(str(tmp_path / "runs" / "r1")))
    state.apply(Event({"event": "started", "epoch": 0, "device": "CPU (2 threads)"}))
    state.apply(Epoch({"epoch": 20, "epoch_seconds": 0.5, "samples_per_s": 12345.6}))
    assert run_head(state.run) == (f"[b]pure[/] | CPU (2 threads) | epoch 20/80 | 12,346 samples/s | ETA 30s | "
                                   f"{os.path.join('runs', 'r1')}")
    state.apply(Summary({"status": "completed"}))
    assert "| ETA - |" in run_head(state.run)


def test_run_note_adds_the_seeds_only_for_stacked_runs():
    state = lab()
    assert run_note(state.run, "running") == "running"
    state.apply(Epoch({"epoch": 1, "members": 3}))
    assert run_note(state.run, "running") == "running | 3 seeds (mean, band = min–max)"


def test_sweep_head_says_the_param_device_epoch_values_and_pause():
    sweep = SweepState.expecting("model.width", [8.0, 2.0, 4.0])
    assert sweep.series.values == [2.0, 4.0, 8.0]
    assert sweep_head(sweep, 50, live=True) == "[b]sweep model.width[/] | device - | epoch -/50 | 0/3 values | - samples/s | ETA - | -"
    state = lab()
    state.sweep = sweep
    state.apply(SweepMeta({"param": "model.width", "values": [2.0, 4.0, 8.0], "epochs": 30, "device": "cpu"}), "sweep")
    state.apply(Progress({"epoch": 7, "values": [2.0, 4.0], "test_err": [0.5, 0.4], "train_err": [0.3, 0.2]}), "sweep")
    sweep.paused = True
    assert sweep_head(sweep, 50, live=True) == "[b]sweep model.width[/] | cpu | epoch 7/30 (paused) | 2/3 values | - samples/s | ETA - | -"
    assert sweep_head(sweep, 50, live=False).count("(paused)") == 0


def test_patience_text_fills_its_bar_and_says_when_stopping_fired():
    state = lab("early_stopping.patience=10", "early_stopping.monitor=val_loss")
    assert patience_text(state.run) == "patience -/10  (monitor val_loss)"
    state.apply(Epoch({"epoch": 8, "es_wait": 5, "es_best": 0.123456, "es_best_epoch": 3}))
    assert patience_text(state.run) == "patience 5/10 " + "█" * 10 + "░" * 10 + "  best val_loss 0.1235 @ epoch 3"
    state.apply(Epoch({"epoch": 15, "es_wait": 12, "es_best": None}))
    assert patience_text(state.run) == "patience 10/10 (+2) " + "█" * 20 + "  best -"
    state.apply(Event({"event": "would_stop", "epoch": 13}))
    assert patience_text(state.run).splitlines()[1] == "[b yellow]would stop @ 13[/] (observe mode: training goes on)"
    state.apply(Event({"event": "early_stop", "epoch": 13, "best_epoch": 3}))
    assert patience_text(state.run).splitlines()[1] == "[b red]EARLY STOP @ epoch 13 (kept epoch 3)[/]"
    state.apply(Event({"event": "tweaked", "epoch": 15, "changes": {"patience": 4}}))
    assert patience_text(state.run).startswith("patience 4/4 (+8) ")
    off = lab("early_stopping.enabled=false")
    off.apply(Epoch({"epoch": 1, "es_wait": 0}))
    assert patience_text(off.run) == "patience 0/10 " + "░" * 20 + "  best -  (early stopping off)"


def test_sweep_outcome_names_threshold_peak_dip_and_the_early_stopped_difference():
    assert sweep_outcome(None) == ""
    sweep = SweepState.expecting("model.width", [2.0, 4.0])
    assert sweep_outcome(sweep) == ""
    sweep.series.add_progress({"epoch": 5, "values": [2.0, 4.0], "test_err": [0.5, 0.4],
                               "test_err_kept": [0.45, 0.42]})
    sweep.summary = {"status": "completed", "wall_seconds": 12.4, "interpolation_threshold": 4.0,
                     "peak_value": 2.0, "peak_test_err": 0.5, "dip_value": 4.0, "dip_test_err": 0.4,
                     "peak_prominence": 0.1, "last_test_err": 0.4}
    assert sweep_outcome(sweep) == ("[b]sweep completed[/] in 12s | interpolation threshold width 4 | "
                                    "test err peak 0.5000 @ width 2 (dip 0.4000 @ 4) | last test err 0.4000 | "
                                    "test err early-stopped − final: 2 -0.050, 4 +0.020")
    sweep.summary = {"status": "cancelled", "interpolation_threshold": None, "reason": "stopped by the user"}
    assert sweep_outcome(sweep) == ("[b]sweep cancelled[/] | no value fit the training set (train err > 1%) | "
                                    "test err early-stopped − final: 2 -0.050, 4 +0.020 | stopped by the user")


# ------------------------------------------------------------------------------------ state
def test_a_new_run_or_sweep_replaces_the_one_on_screen_with_its_status():
    state = lab()
    first = state.run
    assert state.status == "ready" and state.sweep is None and first.cfg.name == "pure"
    cfg = build({"name": "other"}, [])
    state.new_run(cfg, "starting")
    assert state.run is not first and state.run.cfg is cfg and state.status == "starting"
    sweep = SweepState.expecting("optim.lr", [0.1, 0.01])
    assert sweep.series.values == [0.1, 0.01]  # not sorted: only widths are
    state.new_sweep(sweep, "sweeping")
    assert state.sweep is sweep and state.status == "sweeping"
    state.apply(SweepSummary({"status": "completed"}), "sweep")
    assert sweep.summary == {"status": "completed"} and state.run.summary is None
    state.apply(Summary({"status": "failed"}))
    assert state.run.summary == {"status": "failed"} and sweep.summary == {"status": "completed"}


def test_a_sweep_message_without_a_sweep_on_screen_makes_one():
    state = lab()
    state.apply(SweepMeta({"param": "optim.lr", "values": [0.1, 0.01], "epochs": 3}), "sweep")
    assert state.sweep is not None and state.sweep.param == "optim.lr" and state.sweep.meta["epochs"] == 3


# ------------------------------------------------------------------------------------ protocol
def test_each_tweak_rule_is_its_config_fields_limits():
    """`protocol._rule` runs at import (TWEAKS); called here it runs again, so a change to it shows."""
    from gengap_tui.protocol import TWEAKS, TweakRule, _rule

    expected = {
        "optim.lr": TweakRule("float", 0.0, 1e6, True, False, "0 < lr <= 1e6"),
        "regularization.weight_decay": TweakRule("float", 0.0, 10.0, False, False, "0 <= weight_decay <= 10"),
        "early_stopping.patience": TweakRule("int", 1, 100000, False, False, "an integer 1 <= patience <= 100000"),
        "early_stopping.observe": TweakRule("bool", None, None, False, False, "true or false"),
        "early_stopping.min_delta": TweakRule("float", 0.0, 1e6, False, False, "0 <= min_delta <= 1e6"),
    }
    for dotted, rule in expected.items():
        assert _rule(dotted) == rule == TWEAKS[dotted.split(".")[1]], dotted


def test_numbers_are_written_as_people_write_them():
    from gengap_tui.protocol import _num, exact_value, fmt_value, run_config

    assert [fmt_value(v) for v in (3.0, 0.5, 1e-4, 123456.0, 0.1234567)] == ["3", "0.5", "0.0001", "123456", "0.123457"]
    assert [exact_value(v) for v in (3.0, 0.1234567, 1e-7)] == ["3", "0.1234567", "1e-07"]
    assert [_num(v) for v in (0.5, 999999.0, 1e6, 1e10, 2e-3)] == ["0.5", "999999", "1e6", "1e10", "0.002"]
    assert run_config({"a": 1, "torch_version": "2", "device_name": "cpu", "torch_threads": 2}) == {"a": 1}
    assert run_config(None) == {}


@pytest.mark.parametrize("changes, message", [
    ({"lr": 0.0}, "lr = 0.0: expected 0 < lr <= 1e6"),
    ({"lr": 1e6 + 1}, "lr = 1000001.0: expected 0 < lr <= 1e6"),
    ({"weight_decay": -0.1}, "weight_decay = -0.1: expected 0 <= weight_decay <= 10"),
    ({"weight_decay": 10.5}, "weight_decay = 10.5: expected 0 <= weight_decay <= 10"),
    ({"patience": 0}, "patience = 0: expected an integer 1 <= patience <= 100000"),
    ({"patience": 2.5}, "patience = 2.5: expected an integer 1 <= patience <= 100000"),
    ({"patience": True}, "patience = True: expected a number (an integer 1 <= patience <= 100000)"),
    ({"lr": "0.1"}, "lr = '0.1': expected a number (0 < lr <= 1e6)"),
    ({"lr": float("nan")}, "lr = nan: expected a finite number (0 < lr <= 1e6)"),
    ({"observe": 1}, "observe = 1: expected true or false"),
    ({"width": 3, "depth": 2}, "cannot tweak depth, width live (allowed: lr, weight_decay, patience, observe, min_delta, step_factor, "
                              "exp_factor)"),
])
def test_a_tweak_out_of_range_is_refused_naming_the_setting_and_its_range(changes, message):
    from gengap_tui.protocol import check_tweaks

    with pytest.raises(ValueError) as err:
        check_tweaks(changes)
    assert str(err.value) == message


def test_a_tweak_at_its_limits_is_taken_and_normalised():
    from gengap_tui.protocol import check_tweaks

    got = check_tweaks({"lr": 1e6, "weight_decay": 0, "patience": 100000.0, "observe": False, "min_delta": 0})
    assert got == {"lr": 1e6, "weight_decay": 0.0, "patience": 100000, "observe": False, "min_delta": 0.0}
    assert type(got["patience"]) is int and type(got["weight_decay"]) is float and type(got["min_delta"]) is float
    assert check_tweaks({"weight_decay": 10}) == {"weight_decay": 10.0} and check_tweaks({"patience": 1}) == {"patience": 1}
    assert check_tweaks({}) == {}


# ------------------------------------------------------------------------------------ control
class Target:
    def __init__(self, tweakable=True):
        self.stops, self.tweaks = [], []
        if tweakable:
            self.tweak = lambda **changes: self.tweaks.append(changes)

    def request_stop(self, reason=None):
        self.stops.append(reason)


def test_signals_name_themselves_in_the_reason():
    import signal

    from gengap_tui.control import signal_reason

    assert signal_reason(signal.SIGHUP) == "terminal closed (SIGHUP)"
    assert signal_reason(signal.SIGTERM) == "stopped by SIGTERM"
    assert signal_reason(signal.SIGINT) == "stopped by the user (Ctrl+C)"
    assert signal_reason(signal.SIGUSR1) == "stopped by SIGUSR1"


def test_run_control_keeps_the_first_stop_reason_and_passes_commands_on():
    import signal

    from gengap_tui.control import RunControl
    from gengap_tui.protocol import Pause, Resume, Stop, Tweak

    events, warnings = [], []
    c = RunControl(on_event=events.append, on_warning=warnings.append)
    assert (c.stop_requested, c.stop_reason, c.paused, c.epoch) == (False, None, False, 0)
    c.command(Pause())
    assert c.paused is True
    c.command(Resume())
    assert c.paused is False
    c.command(Tweak({"lr": 0.5}))
    c.command(Tweak({"patience": 3}))
    assert c.pending_tweaks == {"lr": 0.5, "patience": 3}
    t = Target()
    c.attach(t)
    assert t.tweaks == [{"lr": 0.5, "patience": 3}] and c.pending_tweaks == {} and t.stops == []
    c.command(Tweak({"lr": 0.25}))
    assert t.tweaks[-1] == {"lr": 0.25}
    c.on_signal(signal.SIGTERM)
    c.command(Stop("stopped from elsewhere"))  # the first reason stays
    assert c.stop_requested and c.stop_reason == "stopped by SIGTERM"
    assert t.stops == ["stopped by SIGTERM", "stopped by SIGTERM"]
    late = Target()
    c.attach(late)  # a target attached after the stop is stopped at once
    assert late.stops == ["stopped by SIGTERM"]
    assert RunControl().stop_reason is None
    d = RunControl()
    d.request_stop()
    assert d.stop_reason == "stopped by the user"


def test_a_bad_command_is_refused_with_an_event_and_a_warning_and_the_run_goes_on():
    from gengap_tui.control import RunControl

    events, warnings = [], []
    c = RunControl(on_event=events.append, on_warning=warnings.append)
    c.epoch = 4
    c.command_wire({"cmd": "tweak", "changes": {"lr": -1}})
    c.command_wire({"cmd": "launch"})
    c.command_wire("stop")
    sweep = Target(tweakable=False)
    c.attach(sweep)
    c.command_wire({"cmd": "tweak", "changes": {"lr": 0.1}})  # a sweep has no tweak: kept for later
    assert c.pending_tweaks == {"lr": 0.1}
    assert [e["event"] for e in events] == ["tweak_refused", "control_refused", "control_refused"]
    assert all(e["epoch"] == 4 and "time" in e for e in events)
    assert events[0]["error"].startswith("command 'tweak': lr = -1: expected 0 < lr <= 1e6")
    assert warnings[0].startswith("tweak refused: ") and warnings[1].startswith("launch refused: ")
    assert warnings[2].startswith("control message refused: a command is a dict, got str")
    assert not c.stop_requested and not c.paused


def test_between_epochs_notes_the_epoch_and_returns_at_once_unless_paused():
    from gengap_tui.control import RunControl

    events = []
    c = RunControl(on_event=events.append)
    c.between_epochs(3)
    assert c.epoch == 3 and events == []
    c.paused = True
    c.request_stop("x")
    c.between_epochs(4)  # paused but stopped: no hold, no event
    assert c.epoch == 4 and events == []


def test_the_heads_edge_cases_two_seeds_a_sweep_folder_and_no_values_yet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = lab()
    state.apply(Epoch({"epoch": 1, "members": 2}))
    assert run_note(state.run, "ok") == "ok | 2 seeds (mean, band = min–max)"
    sweep = SweepState(param="optim.lr", sweep_dir=tmp_path / "sw")
    assert sweep_head(sweep, 5, live=False) == "[b]sweep optim.lr[/] | device - | epoch -/5 | 0/- values | - samples/s | ETA - | sw"
