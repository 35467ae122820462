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
    cfg = small_cfg("noise.label_noise=0.3", "optim.epochs=40", "early_stopping.patience=3",
                    "early_stopping.observe=true")
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
    from test_terminal_loss import COLS, ROWS, InPty

    lab = InPty(tmp_path, "--no-prewarm", "--set", "optim.epochs=100000", "--set", "early_stopping.patience=200")
    try:
        assert lab.wait_drawn("min_delta"), lab.screen_text()[-2000:]
        os.write(lab.master, b"\x12")  # ctrl+r
        assert wait_until(lambda: (d := runs.list_runs(tmp_path)) and len(runs.read_jsonl(d[0] / "metrics.jsonl")) >= 2,
                          120), lab.screen_text()[-2000:]
        [d] = runs.list_runs(tmp_path)
        rows = _screen(bytes(lab.output), COLS, ROWS)
        y = next(i for i, line in enumerate(rows) if line.lstrip().startswith("patience ") and " 200 " in line)
        x = rows[y].index(" 200 ") + 4  # just after the value
        os.write(lab.master, f"\x1b[<0;{x + 1};{y + 1}M\x1b[<0;{x + 1};{y + 1}m".encode())  # a click focuses it
        time.sleep(1.0)
        os.write(lab.master, burst)  # one write: the lab reads it at once
        assert wait_until(lambda: any(e["event"] == "tweaked" for e in runs.read_jsonl(d / "events.jsonl")), 60), \
            lab.screen_text()[-2000:]
        tweaks = [e["changes"] for e in runs.read_jsonl(d / "events.jsonl") if e["event"] == "tweaked"]
        assert tweaks == [{"patience": 8}], tweaks
        # the lab says what the run now uses: the status echoes it and the meter counts to 8
        assert wait_until(lambda: "patience = 8" in "\n".join(_screen(bytes(lab.output), COLS, ROWS))
                          or "'patience': 8" in "\n".join(_screen(bytes(lab.output), COLS, ROWS)), 10)
        assert wait_until(lambda: "/8 " in "\n".join(_screen(bytes(lab.output), COLS, ROWS)), 30), \
            "\n".join(_screen(bytes(lab.output), COLS, ROWS))
        time.sleep(0.5)
        assert [e["changes"] for e in runs.read_jsonl(d / "events.jsonl") if e["event"] == "tweaked"] == [{"patience": 8}]
    finally:
        lab.close()


LAB_SMALL = ["data.n_train=300", "data.n_val=300", "model.width=32", "device=cpu", "noise.label_noise=0.3",
             "optim.lr=0.01", "early_stopping.enabled=false", "optim.epochs=100000"]


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
