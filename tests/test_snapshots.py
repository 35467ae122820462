"""Snapshot tests of the lab, driven by a recorded run (not live training), cursor blink off.
Regenerate after an intended change of the screen: pytest tests/test_snapshots.py --snapshot-update"""

import time

import pytest
from textual.widgets import Input

from conftest import ROOT
from gengap_tui.tui.app import GengapApp
from gengap_tui.tui.screenshot import settle_curves

RUNS = "tests/fixtures/runs"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the status bar shows run paths relative to the working directory


def before(view="error"):
    async def run_before(pilot):
        app = pilot.app
        deadline = time.monotonic() + 20
        while app.state.run.summary is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await app.panels_mounted()  # the first field takes the focus after them: take it away after that
        await pilot.pause()
        for w in app.query(Input):
            w.cursor_blink = False
        app.set_focus(None)
        app.view = view
        await settle_curves(app, pilot)

    return run_before


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_early_stop_replay(snap_compare, size):
    app = GengapApp(replay=f"{RUNS}/label-noise-es", speed=0, runs_dir=RUNS)
    assert snap_compare(app, terminal_size=size, run_before=before())


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_memorization_view(snap_compare):
    app = GengapApp(replay=f"{RUNS}/label-noise-es", speed=0, runs_dir=RUNS)
    assert snap_compare(app, terminal_size=(120, 40), run_before=before("memorization"))


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_compare_overlay(snap_compare):
    app = GengapApp(replay=f"{RUNS}/label-noise-es", speed=0, runs_dir=RUNS, compare=[f"{RUNS}/label-noise-wd"])
    assert snap_compare(app, terminal_size=(120, 40), run_before=before())
