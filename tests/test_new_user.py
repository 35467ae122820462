"""Issue 22: what a new user met in the first hour, round two. Each test failed before its fix."""

import os
import time

import pytest

from conftest import small_cfg
from gengap_tui.config import validate
from gengap_tui.protocol import run_config
from gengap_tui.session import run_session
from gengap_tui.sources import ReplaySource
from gengap_tui.tui.state import LabState
from gengap_tui.tui.texts import run_outcome

pytestmark = pytest.mark.usefixtures("data_cache")


def test_observe_mode_shows_kept_against_final_on_the_outcome_line(tmp_path):
    """Item 1: the one number observe mode exists for, the final weights' test error, is on the
    lab's outcome line next to what stopping would have kept (it printed the kept number twice)."""
    cfg = small_cfg("noise.label_noise=0.3", "optim.epochs=30", "early_stopping.patience=3",
                    "early_stopping.observe=true", "data.n_train=300", "data.n_val=300", "model.width=32")
    out = run_session(cfg, tmp_path)
    s = out.summary
    assert s["would_stop_epoch"] is not None and s["final_test_err"] != s["would_stop_test_err"]
    state = LabState(validate(run_config(ReplaySource(out.run_dir, speed=0).config)))
    for msg in ReplaySource(out.run_dir, speed=0).poll():
        state.apply(msg, "run")
    line = run_outcome(state.run.summary)
    assert f"{s['would_stop_test_err']:.4f}" in line and f"{s['final_test_err']:.4f}" in line, line
    assert f"epoch {s['would_stop_best_epoch']}" in line and f"final (epoch {s['epochs_run']})" in line, line


def test_compare_legends_tell_the_runs_apart_by_what_distinguishes_them_first():
    """Item 5: two weight-decay values of a sweep against a CNN run: both MLP entries read
    `early_stopping.enabled=off model=mlp noise=0.15 …` (alphabetical keys, the weight decay cut)."""
    from gengap_tui import presets
    from gengap_tui.compare import diff_labels
    from gengap_tui.config import build

    sweep = ["early_stopping.enabled=false", "noise.label_noise=0.15"]
    a = build(presets.load_raw("default"), sweep + ["regularization.weight_decay=0"]).dump()
    b = build(presets.load_raw("default"), sweep + ["regularization.weight_decay=0.001"]).dump()
    cnn = build(presets.load_raw("cnn-clean"), []).dump()
    lab = build(presets.load_raw("default"), []).dump()
    labels = diff_labels([a, b, cnn, lab], ["a", "b", "cnn", "this run"])
    assert len(set(labels)) == 4, labels
    # the weight decay, which alone tells the two sweep values apart, is among the first two words
    assert "wd=0" in labels[0].split()[:2] and "wd=0.001" in labels[1].split()[:2], labels
    for cfgs in ([a, b], [a, b, cnn], [cnn, a, b, lab]):
        got = diff_labels(cfgs)
        assert len(set(got)) == len(cfgs), got
    # two runs alike in every setting are told apart by their names, even next to a third
    assert len(set(diff_labels([a, a, cnn], ["run1", "run2", "run3"]))) == 3


@pytest.mark.parametrize("where", ["parent_is_a_file", "read_only_fs", "a_folder"])
def test_screenshot_into_a_place_it_cannot_write_is_exit_2_before_anything_runs(tmp_path, capsys, where):
    """Item 6: checked first, exit 2 naming --out (it rendered, then died with a traceback, exit 1)."""
    from gengap_tui.cli import main

    (tmp_path / "file").write_text("x")
    out = {"parent_is_a_file": tmp_path / "file" / "shot.svg", "a_folder": tmp_path / "dir.svg",
           "read_only_fs": "/proc/gengap-shot.svg"}[where]
    if where == "a_folder":
        out.mkdir()
    if where == "read_only_fs" and not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux /proc")
    runs_dir = tmp_path / "runs"
    code = main(["screenshot", "default", "--out", str(out), "--runs-dir", str(runs_dir), "--set", "optim.epochs=1"])
    err = capsys.readouterr().err
    assert code == 2 and f"--out = {str(out)!r}" in err, err
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # nothing was trained


def _screen(raw: bytes, cols: int, rows: int) -> list[str]:
    import pyte

    screen = pyte.Screen(cols, rows)
    pyte.ByteStream(screen).feed(raw)
    return screen.display


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs a pty and /proc (Linux)")
@pytest.mark.parametrize("burst", [b"\x7f\x7f\x7f8\r", b"\x7f\x7f\x7f\x1b[200~8\x1b[201~\r"], ids=["typed", "pasted"])
def test_a_burst_of_keys_into_a_live_field_applies_exactly_what_was_typed(tmp_path, burst):
    """Item 2: `BSpace BSpace BSpace 8 Enter` in one write (tmux send-keys, a paste, key repeat, a
    laggy SSH link) into the patience field of a live run: Textual's Input did the backspaces after
    the 8 (they go through bindings that wait for the key to bubble up) and the run got patience 2."""
    from conftest import wait_until
    from gengap_tui import runs
    from test_terminal_loss import COLS, InPty

    ROWS = 50  # the whole settings form on screen (it is taller than 36 rows), the patience field included

    # 4,000 examples: on a quiet box 300 trained 245 epochs (patience 200 ran out) in 1.5 s, before the burst
    lab = InPty(tmp_path, "--no-prewarm", "--set", "optim.epochs=100000", "--set", "early_stopping.patience=200",
                "--set", "data.n_train=4000", "--set", "data.n_val=1000", rows=ROWS)
    try:
        # the panels' patience row (the form is taller than 36 rows now: min_delta is below it)
        assert wait_until(lambda: any(line.lstrip().startswith("patience ") and " 200 " in line
                                      for line in _screen(bytes(lab.output), COLS, ROWS)), 120), lab.screen_text()[-2000:]
        os.write(lab.master, b"\x12")  # ctrl+r
        assert wait_until(lambda: (d := runs.list_runs(tmp_path)) and len(runs.read_jsonl(d[0] / "metrics.jsonl")) >= 2,
                          120), lab.screen_text()[-2000:]
        [d] = runs.list_runs(tmp_path)
        # the system line (CPU, RSS) comes under the status bar with the first rows and moves the
        # panels down a row: the field is looked for once it is there
        assert wait_until(lambda: "RSS" in "\n".join(_screen(bytes(lab.output), COLS, ROWS)), 60)
        time.sleep(0.5)
        rows = _screen(bytes(lab.output), COLS, ROWS)
        at = [i for i, line in enumerate(rows) if line.lstrip().startswith("patience ") and " 200 " in line]
        assert at, "\n".join(rows)
        y = at[0]
        x = rows[y].index(" 200 ") + 4  # just after the value
        os.write(lab.master, f"\x1b[<0;{x + 1};{y + 1}M\x1b[<0;{x + 1};{y + 1}m".encode())  # a click focuses it
        time.sleep(1.0)
        os.write(lab.master, burst)  # one write: the lab reads it at once
        assert wait_until(lambda: any(e["event"] == "tweaked" for e in runs.read_jsonl(d / "events.jsonl")), 60), \
            lab.screen_text()[-2000:]
        tweaks = [e["changes"] for e in runs.read_jsonl(d / "events.jsonl") if e["event"] == "tweaked"]
        assert tweaks == [{"patience": 8}], tweaks
        # the lab says what the run now uses: the status echoes it and the meter counts to 8
        # (what was drawn since: with patience 8 the run may stop a moment later and say so instead)
        assert wait_until(lambda: "patience = 8" in lab.screen_text() or "'patience': 8" in lab.screen_text(), 10)
        assert wait_until(lambda: "/8 " in "\n".join(_screen(bytes(lab.output), COLS, ROWS)), 30), \
            "\n".join(_screen(bytes(lab.output), COLS, ROWS))
        time.sleep(0.5)
        assert [e["changes"] for e in runs.read_jsonl(d / "events.jsonl") if e["event"] == "tweaked"] == [{"patience": 8}]
    finally:
        lab.close()


LAB_SMALL = ["data.n_train=300", "data.n_val=300", "model.width=32", "device=cpu", "noise.label_noise=0.3",
             "optim.lr=0.01", "early_stopping.enabled=false", "optim.epochs=100000"]


@pytest.mark.slow  # a real training process
async def test_a_tick_of_a_stopped_or_replaced_fast_poll_timer_never_crashes_the_lab(tmp_path):
    """Item 3: `'NoneType' object has no attribute 'stop'` in `_poll_fast`'s tick: a tick of the
    fast-poll timer that came after its handle was cleared (or replaced by a restart) stopped
    `self._fast_poll` as it then was: None, or the new run's timer."""
    from conftest import wait_for
    from gengap_tui.tui.app import GengapApp

    app = GengapApp("default", LAB_SMALL, runs_dir=tmp_path)
    async with app.run_test() as pilot:
        await pilot.press("ctrl+r")
        stale = app._fast_poll._callback  # the first run's tick
        assert await wait_for(pilot, lambda: len(app.state.run.series.rows) >= 1)
        await pilot.pause(0.1)
        assert app._fast_poll is None  # it stopped itself at the first epoch
        stale()  # one more tick that was already due: before the fix, AttributeError
        app._poll_fast()  # a restart's timer ...
        newer = app._fast_poll
        stale()  # ... is not the stale tick's to stop
        assert app._fast_poll is newer
        await pilot.press("ctrl+q")


@pytest.mark.slow  # a real training process
async def test_a_lab_that_crashes_says_so_in_its_runs_summary(tmp_path):
    """Item 3: a crash of the lab closed its run as `cancelled: ... the lab was closed`."""
    from conftest import wait_for
    from gengap_tui.runs import load_run
    from gengap_tui.tui.app import GengapApp

    app = GengapApp("default", LAB_SMALL, runs_dir=tmp_path)

    def boom() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        async with app.run_test() as pilot:
            await pilot.press("ctrl+r")
            assert await wait_for(pilot, lambda: len(app.state.run.series.rows) >= 2)
            run_dir = app.source.path
            app.set_timer(0.01, boom)  # an exception in a handler: Textual exits the app
            await pilot.pause(1.0)
    app.shutdown_run()  # what run_lab (and a tour) do once the app has returned
    s = load_run(run_dir).summary
    assert s["status"] == "cancelled" and "the lab crashed (RuntimeError: boom)" in s["reason"], s["reason"]


@pytest.mark.parametrize("name", ["early-stopping", pytest.param("memorization", marks=pytest.mark.slow),
                                  pytest.param("double-descent", marks=pytest.mark.slow)])  # (long casts: ~1.5-2 s)
def test_every_caption_of_a_committed_tour_recording_stays_for_its_reading_time(name):
    """Item 4: in screenshots/early-stopping.cast caption 1 was on screen for 0.09 s and caption 4
    for 0.03 s (the lab's messages replaced them; `epoch 4` passes in a blink)."""
    import re

    from conftest import ROOT
    from gengap_tui.tui import tour as tours
    from gengap_tui.tui.recording import read_cast
    from test_recording import screens

    tour = tours.load(name)
    header, events = read_cast(ROOT / "screenshots" / f"{name}.cast")
    frames = list(screens(header, events))
    end = events[-1][0]
    n = len(tour.steps)
    for step in tour.steps:
        if not step.caption:
            continue
        mark = re.compile(rf"tour {step.number}/{n}\b")
        on = [t for t, text in frames if mark.search(text)]
        assert on, f"caption {step.number} never shown"
        first = on[0]
        gone = next((t for t, text in frames if t > first and not mark.search(text)), end)
        need = tour.reading_s(step.caption)
        assert gone - first >= need - 0.05, f"{name} caption {step.number}: {gone - first:.2f} s < {need:.2f} s"


def test_every_packaged_caption_fits_the_status_line_at_120_columns():
    """Item 4: a caption cut with … cannot be read (two were 129 and 131 characters)."""
    from gengap_tui.tui import tour as tours

    for name in tours.available():
        tour = tours.load(name)
        for step in tour.steps:
            shown = f"tour {step.number}/{len(tour.steps)} {step.caption}"
            assert len(shown) <= 118, f"{name} step {step.number}: {len(shown)} characters"


# ---- item 8: the smaller things seen on screen


async def test_at_80_columns_every_footer_key_is_on_screen(tmp_path):
    """The footer ended in `f3 Compar▏` at 80 columns: ^o, ^s (and ^q) were lost."""
    from textual.widgets import Footer

    from gengap_tui.tui.app import GengapApp

    app = GengapApp("default", ["device=cpu"], runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        keys = [k for k in app.query_one(Footer).children if k.display and getattr(k, "key_display", None)]
        shown = {b.key for b in app.BINDINGS if b.show}
        assert len([k for k in keys if k.key in shown]) == len(shown)
        for k in keys:
            assert k.region.right <= 80, (k.key_display, k.region)


def test_a_nan_setting_is_refused_as_not_a_finite_number():
    from gengap_tui.config import ConfigError, build

    for bad in ("nan", "inf"):
        with pytest.raises(ConfigError) as exc:
            build({}, [f"optim.lr={bad}"])
        assert exc.value.problems == [f"optim.lr = {bad}: must be a finite number (allowed: a number, 0.0 < lr <= 1e+06)"]


def test_headless_progress_counts_no_patience_when_early_stopping_is_off(capsys):
    from gengap_tui.report import Progress

    row = {"epoch": 18, "train_err": 0.1, "val_err": 0.2, "gap_err": 0.1, "es_wait": 18, "es_best": 0.2,
           "es_best_epoch": 1}
    for patience, text in ((None, "early stopping off"), (10, "patience 10/10 (+8)")):
        p = Progress(100, patience, True)
        p.epoch(row)
        err = capsys.readouterr().err
        assert text in err and "patience 18/10" not in err, err


def test_a_stop_seen_at_an_epochs_end_names_the_epoch_it_cut_short(tmp_path):
    """Ctrl+C said `28 epochs ... during epoch 29`, f7 `197 epochs ... during epoch 197`."""
    from gengap_tui.core.trainer import Trainer

    tr = Trainer(small_cfg("optim.epochs=10", "data.n_train=300", "data.n_val=300", "model.width=32"))

    def on_epoch(row):
        if row["epoch"] == 3:
            tr.request_stop("stopped by the user from the lab")  # lands after the epoch's work

    s = tr.run(on_epoch=on_epoch)
    assert s["status"] == "cancelled" and s["epochs_run"] == 3
    assert s["reason"] == "stopped by the user from the lab during epoch 4", s["reason"]


def test_one_thread_is_one_thread():
    import torch

    from gengap_tui.core.trainer import device_name

    n = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert device_name(torch.device("cpu")).endswith(", 1 thread)")
    finally:
        torch.set_num_threads(n)


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_panels_hide_when_the_terminal_shrinks_past_the_narrow_width_after_f2(tmp_path):
    """At 60x15 the plot was 16 columns wide: f2's choice at 120 columns outlived the shrink."""
    from gengap_tui.tui.app import GengapApp

    app = GengapApp("default", ["device=cpu"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("f2", "f2")  # hidden, then shown again by hand
        await pilot.pause(0.1)
        assert app.query_one("#panels").display
        await pilot.resize_terminal(60, 15)
        await pilot.pause(0.3)
        assert not app.query_one("#panels").display and app.query_one("#plot").size.width >= 50


async def test_the_palette_names_the_presets_sweep_parameter(tmp_path):
    from gengap_tui.tui.app import GengapApp
    from gengap_tui.tui.commands import LabCommands

    app = GengapApp("default", ["device=cpu", "sweep.param=regularization.weight_decay"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 36)):
        titles = [t for t, _, _ in LabCommands(app.screen).commands()]
        assert "Sweep regularization.weight_decay over the sweep panel's values" in titles, titles


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_f3_says_why_when_the_runs_directory_is_a_file(tmp_path):
    from gengap_tui.tui.app import GengapApp

    (tmp_path / "runs").write_text("not a folder")
    app = GengapApp("default", ["device=cpu"], runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("f3")
        await pilot.pause(0.1)
        assert "is a file, not a folder" in app.state.status


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_status_messages_and_the_compare_title_fit_120_columns(tmp_path):
    """`…or start t…` (f4 with no sweep values) and `a attaches to the highl` were cut."""
    from rich.text import Text

    from gengap_tui.tui.app import GengapApp

    app = GengapApp("default", ["device=cpu", "sweep.values=[]"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("f4")
        await pilot.pause(0.1)
        assert "nothing to sweep" in app.state.status and len(Text.from_markup(app.state.status).plain) <= 118
    from gengap_tui.tui.dialogs import PickRuns
    from textual.widgets import Label

    d = tmp_path / "20260101T000000Z-x-abcdef"
    d.mkdir()
    (d / "config.json").write_text("{}")
    app = GengapApp("default", ["device=cpu"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("f3")
        await pilot.pause(0.2)
        assert isinstance(app.screen, PickRuns)
        title = app.screen.query(Label).first()
        lines = str(title.render()).splitlines()
        assert any("a attaches to the highlighted run" in line for line in lines)
        assert all(len(line) <= title.size.width for line in lines)


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_tour_step_mode_waits_for_a_key_and_goes_back_one_step(tmp_path):
    """Item 4: `tour NAME --step` for a live lecture: each step waits for the lecturer's key
    (space / right / PageDown), and left / PageUp shows the step before again."""
    import asyncio

    from gengap_tui.tui import tour as tours
    from gengap_tui.tui.app import GengapApp

    tour = tours.parse({"read_base_s": 0.05, "read_per_char_s": 0.0, "step": [
        {"caption": "one", "wait": "pause 0.05"}, {"caption": "two", "wait": "pause 0.05"},
        {"caption": "three", "wait": "pause 0.05"}]}, tmp_path / "t.toml")
    app = tours.stepped(GengapApp)("default", ["device=cpu"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.tour_keys = asyncio.Queue()
        task = asyncio.create_task(tours.play(app, pilot, tour, step_mode=True))
        seen = []
        for key in ["space", "left", "right", "pagedown", "space"]:
            await pilot.pause(0.4)
            seen.append(app.caption.split("[/] ")[-1])
            assert not task.done()
            await pilot.press(key)
        await pilot.pause(0.3)
        assert task.done() and task.exception() is None
        assert seen == ["one", "two", "one", "two", "three"], seen
        assert "one" not in app.state.status  # a caption is shown in place of the status, not written to it


def test_the_sweeps_status_bar_has_samples_per_second_and_an_eta():
    """Item 8: the sweep's status bar had neither."""
    from gengap_tui.tui.state import SweepState
    from gengap_tui.tui.texts import sweep_head

    sw = SweepState.expecting("model.width", [2, 4])
    sw.meta = {"epochs": 10, "config": {"data": {"n_train": 1000}, "run": {"seeds": 2}}}
    for epoch in (1, 2):  # grouped: both values in each row, 0.5 s an epoch
        sw.series.add_progress({"epoch": epoch, "values": [2, 4], "epoch_seconds": 0.5, "train_err": [0.5, 0.4]})
    head = sweep_head(sw, 10, live=True)
    # 2 values x 2 seeds x 1000 examples every 0.5 s; 16 value-epochs left at 4 a second
    assert "8,000 samples/s" in head and "ETA 4s" in head, head
    sw.summary = {"status": "completed"}
    assert "ETA -" in sweep_head(sw, 10, live=False)


@pytest.mark.slow  # a real training process
async def test_f9_during_a_sweep_cycles_only_the_sweep_views(tmp_path):
    """Item 8: f9 to the error or loss view during an f4 sweep showed the run before it, and its
    status bar (`default ... epoch 20/200`) under "sweeping"."""
    from conftest import wait_for
    from gengap_tui.tui.app import GengapApp
    from gengap_tui.tui.plots import SWEEP_VIEWS

    app = GengapApp("default", LAB_SMALL[:-2] + ["optim.epochs=100000", "sweep.values=[2,4]"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("f4")
        assert await wait_for(pilot, lambda: app.state.sweep.series.epoch >= 1, 120)
        seen = set()
        for _ in range(5):
            await pilot.press("f9")
            await pilot.pause(0.05)
            seen.add(app.view)
        assert seen == set(SWEEP_VIEWS), seen
        await pilot.press("ctrl+q")