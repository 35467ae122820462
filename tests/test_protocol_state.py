"""The parts of the lab that need no app: messages and commands on the wire, the control channel,
the lab's state and the plots drawn from it."""

import json
import threading
import time

import pytest

from conftest import ROOT, Recorder, wait_until
from gengap_tui import runs
from gengap_tui.config import build, validate
from gengap_tui.control import FileFeed, RunControl
from gengap_tui.protocol import (COMMANDS, MESSAGES, USER_STOP, Epoch, Error, Event, Pause, Progress, ProtocolError,
                                 Resume, RunDir, Stop, Summary, SweepMeta, SweepRows, SweepSummary, Tweak, Warning,
                                 check_tweaks, decode, decode_command, run_config)
from gengap_tui.sources import ReplaySource
from gengap_tui.tui.plots import run_plot, sweep_plot
from gengap_tui.tui.state import LabState, SweepState
from gengap_tui.tui.texts import patience_text, run_outcome

FIXTURE = ROOT / "tests" / "fixtures" / "runs" / "label-noise-es"


def test_every_message_and_command_survives_the_wire():
    """All 10 message kinds and 4 commands, through JSON (control.jsonl, a sweep's files) as well
    as in memory (the lab's queue), each with every field set away from its default."""
    msgs = (RunDir("/x"), Epoch({"epoch": 1, "val_err": 0.25}), Event({"event": "started", "epoch": 0}),
            Summary({"status": "completed"}), Error("bad", cancelled=True), Warning("tweak refused: lr"),
            Progress({"epoch": 2, "values": [2.0, 4.0]}), SweepMeta({"param": "model.width", "values": [2.0]}),
            SweepRows([{"value": 2.0, "status": "completed"}]), SweepSummary({"status": "cancelled"}))
    assert {type(m) for m in msgs} == set(MESSAGES.values())  # none left out
    for msg in msgs:
        wire = msg.to_wire()
        assert wire["type"] == msg.TYPE and decode(wire) == msg and type(decode(wire)) is type(msg)
        assert decode(json.loads(json.dumps(wire))) == msg
    cmds = (Pause(), Resume(), Stop("terminal closed (SIGHUP)"), Tweak({"lr": 0.1}))
    assert {type(c) for c in cmds} == set(COMMANDS.values())
    for cmd in cmds:
        wire = cmd.to_wire()
        assert wire["cmd"] == cmd.CMD and decode_command(json.loads(json.dumps(wire))) == cmd
    assert decode({"type": "error", "message": "bad"}) == Error("bad", cancelled=False)  # the default
    assert decode_command({"cmd": "stop"}) == Stop(USER_STOP)


@pytest.mark.parametrize("record", [{"type": "epoch"}, {"type": "nope"}, {"type": "epoch", "row": [1]}, "epoch",
                                    {"type": "error", "message": 3}])
def test_a_record_that_is_no_message_is_refused_where_it_arrives(record):
    with pytest.raises(ProtocolError):
        decode(record)


def test_tweak_limits_are_the_config_fields_own():
    cfg_limit = build({}, ["early_stopping.patience=100000"]).early_stopping.patience
    assert check_tweaks({"patience": cfg_limit}) == {"patience": cfg_limit}
    with pytest.raises(ValueError, match="patience = 100001: expected an integer 1 <= patience <= 100000"):
        check_tweaks({"patience": cfg_limit + 1})
    with pytest.raises(ProtocolError, match="lr"):
        decode_command({"cmd": "tweak", "changes": {"lr": 0}})


class FakeTrainer:
    def __init__(self):
        self.stops, self.tweaks = [], []

    def request_stop(self, reason=None):
        self.stops.append(reason)

    def tweak(self, **changes):
        self.tweaks.append(changes)


def test_control_file_pauses_tweaks_and_stops_with_a_reason(tmp_path):
    events = []
    control = RunControl(on_event=events.append)
    trainer = FakeTrainer()
    control.command(Tweak({"lr": 0.5}))  # before the trainer exists: kept, then handed over
    control.attach(trainer)
    assert trainer.tweaks == [{"lr": 0.5}]
    feed = FileFeed(control, tmp_path).start()
    try:
        runs.send_control(tmp_path, **Pause().to_wire())
        assert wait_until(lambda: control.paused, 5)
        held = threading.Thread(target=control.between_epochs, args=(7,))
        held.start()
        # the training thread says it holds (its paused event), and still holds after the feed
        # has read another command from the file (several of its polls later)
        assert wait_until(lambda: [e["event"] for e in events] == ["paused"], 5), events
        runs.send_control(tmp_path, **{"cmd": "tweak", "changes": {"lr": -1}})  # refused, the run goes on
        assert wait_until(lambda: "tweak_refused" in [e["event"] for e in events], 5), events
        assert held.is_alive()  # paused: the training thread waits
        runs.send_control(tmp_path, **Stop("stopped from elsewhere").to_wire())
        held.join(5)
        assert not held.is_alive()
    finally:
        feed.close()
    assert trainer.stops == ["stopped from elsewhere"]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "paused" and "tweak_refused" in kinds and "resumed" not in kinds
    assert all(e["epoch"] == 7 for e in events)


def test_the_state_of_a_replayed_run_and_its_plots_need_no_app():
    rec = runs.load_run(FIXTURE)
    cfg = validate(run_config(rec.config))
    state = LabState(cfg)
    for msg in ReplaySource(FIXTURE, speed=0).poll():
        state.apply(msg, "run")
    assert len(state.run.series.rows) == len(rec.metrics) and state.run.summary == rec.summary
    s = rec.summary
    assert f"EARLY STOP @ epoch {s['stop_epoch']} (kept epoch {s['best_epoch']})" in patience_text(state.run)
    assert f"test err {s['test_err']:.4f}" in run_outcome(state.run.summary)
    plot = run_plot(state.run, "memorization", False, 80)
    labels = [label for _, _, label, _ in plot.lines]
    assert labels == ["clean-train err", "noisy memorized", "val err"]
    assert (s["stop_epoch"], "red") in plot.vlines and (s["best_epoch"], "green") in plot.vlines
    rec_calls = Recorder()
    plot.fill(rec_calls)
    assert [c[0] for c in rec_calls.calls].count("plot") == 3


def test_an_edit_is_a_tweak_a_restart_or_nothing():
    cfg = build({}, ["optim.lr=0.01"])
    state = LabState(cfg)
    assert state.run.change(build({}, ["optim.lr=0.02"]), "optim.lr") == ("optim.lr", 0.02)
    assert state.run.change(build({}, ["optim.lr=0.01"]), "optim.lr") is None
    assert state.run.change(build({}, ["optim.lr=0.01", "model.width=8"]), "model.width") == "restart"


def test_a_sweep_plot_marks_the_interpolation_threshold():
    sweep = SweepState.expecting("model.width", [8, 2, 4])
    sweep.series.add_progress({"epoch": 3, "values": [2, 4, 8], "train_err": [0.3, 0.0, 0.0],
                               "test_err": [0.5, 0.6, 0.4]})
    plot = sweep_plot(sweep, 80)
    assert sweep.series.values == [2.0, 4.0, 8.0]
    assert plot.vlines == [(pytest.approx(0.60206, abs=1e-4), "magenta")]  # log10(4)
    assert "interpolation threshold 4" in plot.title


def test_eta_follows_recent_epochs_not_pauses_or_start_up():
    from gengap_tui.tui.texts import run_head

    state = LabState(build({}, ["optim.epochs=80"]))
    for e in range(1, 23):
        state.run.series.add({"epoch": e, "epoch_seconds": 2.0 if e < 12 else 0.05, "samples_per_s": 1.0})
    assert "ETA 3s" in run_head(state.run)  # 58 epochs left at 0.05 s (the last 10 epochs' pace)
    state.apply(Summary({"status": "completed"}))
    assert "ETA -" in run_head(state.run)


@pytest.mark.parametrize("lo,hi", [(0.30103, 0.69897), (-0.2, -0.1), (-3.0, 0.5), (-2.5, -1.2)])
def test_a_log_loss_axis_has_at_least_two_labelled_ticks_inside_the_data(lo, hi):
    from gengap_tui.tui.series import log10_ticks

    ticks, labels = log10_ticks(lo, hi)
    assert len(ticks) == len(labels) >= 2 and all(lo - 1e-9 <= t <= hi + 1e-9 for t in ticks)
    for t, label in zip(ticks, labels):  # each label is the loss at its position
        assert float(label) == pytest.approx(10 ** t, rel=0.01)


def test_the_lab_says_when_a_sweep_has_no_peak():
    from gengap_tui.tui.texts import sweep_outcome

    sweep = SweepState(param="model.width", summary={
        "status": "completed", "interpolation_threshold": 128.0, "peak_value": None, "peak_test_err": None,
        "dip_value": None, "dip_test_err": None, "peak_prominence": -0.014, "last_test_err": 0.47})
    text = sweep_outcome(sweep)
    assert "no test-error peak" in text and "dip" not in text


def test_the_lab_says_when_a_checkpoint_could_not_be_written():
    state = LabState(build({}, []))
    state.apply(Event({"event": "checkpoint_failed", "epoch": 3, "time": 0.0,
                       "error": "OSError: [Errno 28] No space left on device: '/runs/x/checkpoint.pt'"}))
    assert state.status == ("[b yellow]checkpoint not saved after epoch 3: OSError: \\[Errno 28] No space left on "
                            "device: '/runs/x/checkpoint.pt'[/] (the run goes on)")
    from rich.text import Text

    assert "[Errno 28]" in Text.from_markup(state.status).plain  # the error reads as it was raised
