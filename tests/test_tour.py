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
