"""`gengap-tui tour`: scripted demos checked before they run, played in the real lab, recordable
without a terminal of one's own."""

import pytest

from gengap_tui import runs
from gengap_tui.cli import main
from gengap_tui.tui import tour as tours
from gengap_tui.tui.recording import read_cast
from test_recording import screens

SMALL = ["device=cpu", "data.n_train=300", "data.n_val=300", "model.width=32"]


def write(tmp_path, text):
    p = tmp_path / "t.toml"
    p.write_text(text)
    return p


def test_packaged_tours_are_listed_one_line_each_and_all_load(capsys):
    assert main(["tour", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = [line.split()[0] for line in lines]
    assert names == sorted(tours.available()) and {"early-stopping", "memorization", "double-descent"} <= set(names)
    assert all("broken" not in line for line in lines)


@pytest.mark.parametrize("text,needle", [
    ('preset = "default"\ncolour = 1\n[[step]]\nwait = "pause 1"\n', "unknown key(s) colour"),
    ('preset = "default"\n[[step]]\nwait = "lunch"\n', "step 1: wait = 'lunch'"),
    ('preset = "default"\n[[step]]\nkeys = ["ctrl+x"]\n', "step 1: keys = ['ctrl+x']"),
    ('preset = "default"\n[[step]]\nwait = "epoch 2"\ntimeout = 0\n', "step 1: timeout = 0"),
    ('preset = "default"\n', "at least one [[step]]"),
])
def test_a_bad_tour_is_refused_before_anything_runs(tmp_path, capsys, text, needle):
    path = write(tmp_path, text)
    assert main(["tour", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_a_step_that_waits_too_long_ends_the_tour_naming_it(tmp_path, capsys):
    sets = ", ".join(f'"{s}"' for s in SMALL + ["optim.epochs=3"])
    path = write(tmp_path, f'preset = "default"\nset = [{sets}]\n'
                           '[[step]]\nkeys = ["ctrl+r"]\nwait = "run_done"\ntimeout = 120\n'
                           '[[step]]\nwait = "sweep_done"\ntimeout = 1\n')
    assert main(["tour", str(path), "--runs-dir", str(tmp_path)]) == 2
    assert "step 2: waited 1 s for 'sweep_done'" in capsys.readouterr().err
    [d] = runs.list_runs(tmp_path)  # step 1 ran for real: the lab trained the preset
    assert runs.read_json(d / "summary.json")["status"] == "completed"


@pytest.mark.slow
def test_a_tour_recorded_without_a_terminal_shows_the_early_stop(tmp_path):
    cast = tmp_path / "tour.cast"
    code = main(["tour", "early-stopping", "--record", str(cast), "--size", "100x30", "--speed", "20",
                 "--runs-dir", str(tmp_path)])
    assert code == 0
    header, events = read_cast(cast)
    assert (header["width"], header["height"]) == (100, 30)
    shown = [text for _, text in screens(header, events)]
    fired = [i for i, text in enumerate(shown) if "EARLY STOP @ epoch" in text]
    assert fired and "tour 3/5" in "".join(shown[:fired[0] + 1])  # the caption of the step that waited for it
    [d] = runs.list_runs(tmp_path)
    assert runs.read_json(d / "summary.json")["status"] == "early_stopped"


def test_each_wait_holds_only_once_its_state_has_come():
    """`tour.condition` on the lab's state (no app): each wait is false before what it waits
    for and true after, and never true from another kind's event."""
    from types import SimpleNamespace

    from gengap_tui.config import build
    from gengap_tui.protocol import Epoch, Event, Summary, SweepSummary
    from gengap_tui.tui.state import LabState, SweepState

    state = LabState(build({}, []))
    app = SimpleNamespace(state=state)
    waits = ["epoch 2", "early_stop", "would_stop", "run_done", "sweep_done"]
    assert [tours.condition(app, w) for w in waits] == [False] * 5
    state.apply(Epoch({"epoch": 1}))
    state.apply(Event({"event": "started", "epoch": 0}))
    state.apply(Event({"event": "paused", "epoch": 1}))
    assert [tours.condition(app, w) for w in waits] == [False] * 5
    state.apply(Epoch({"epoch": 2}))
    state.apply(Event({"event": "would_stop", "epoch": 2, "best_epoch": 1}))
    assert [tours.condition(app, w) for w in waits] == [True, False, True, False, False]
    state.apply(Event({"event": "early_stop", "epoch": 2, "best_epoch": 1}))
    assert [tours.condition(app, w) for w in waits] == [True, True, True, False, False]
    state.apply(Summary({"status": "early_stopped"}))
    assert [tours.condition(app, w) for w in waits] == [True, True, True, True, False]
    assert tours.condition(app, "epoch 3") is False
    state.sweep = SweepState.expecting("model.width", [2.0, 4.0])
    assert tours.condition(app, "sweep_done") is False
    state.apply(SweepSummary({"status": "completed"}), "sweep")
    assert tours.condition(app, "sweep_done") is True
    assert tours.condition(app, "pause 2") is True  # a pause is played, not waited for


def test_a_tours_replay_path_is_read_from_the_tours_folder_not_the_working_one(tmp_path, monkeypatch):
    src = tmp_path / "tours" / "recorded"
    import shutil

    from conftest import ROOT

    shutil.copytree(ROOT / "tests" / "fixtures" / "runs" / "label-noise-es", src)
    path = tmp_path / "tours" / "demo.toml"
    path.write_text('replay = "recorded"\nspeed = 4\n[[step]]\nwait = "run_done"\n')
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "recorded").mkdir(parents=True)  # the same name in the working folder: not it
    monkeypatch.chdir(elsewhere)
    tour = tours.load(str(path))
    assert tour.replay == src and tour.speed == 4.0
    (path.parent / "recorded").rename(path.parent / "gone")
    with pytest.raises(tours.TourError, match=f"replay = '{src}' is not a run or sweep directory"):
        tours.load(str(path))
    absolute = tmp_path / "tours" / "abs.toml"
    absolute.write_text(f'replay = "{path.parent / "gone"}"\n[[step]]\nwait = "run_done"\n')
    assert tours.load(str(absolute)).replay == path.parent / "gone"
