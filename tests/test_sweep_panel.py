"""The lab designs the experiment (issue 25, items 1 and 2): the sweep panel (parameter, values as
a list or a range, a grid's second parameter, seeds, observe; validated as you type; f4 sweeps what
it says; ctrl+s saves it into the preset's [sweep]) and the sweep view's cursor, whose enter opens
a sweep point's run directory in the run view (escape comes back)."""

import pytest
from textual.widgets import Input

from conftest import wait_for
from gengap_tui import presets
from gengap_tui.config import build, read_toml
from gengap_tui.protocol import point_dir_name
from gengap_tui.runs import read_json, read_jsonl
from gengap_tui.sources import LiveSweepSource
from gengap_tui.sweep_values import parse_values
from gengap_tui.tui.app import GengapApp
from gengap_tui.tui.point_screen import PointScreen
from gengap_tui.tui.screenshot import settle_curves
from gengap_tui.tui.widgets.sweep_panel import sweep_id

SMALL = ["data.n_train=300", "data.n_val=200", "device=cpu", "noise.label_noise=0.1", "optim.lr=0.01"]
VALUES = [2.0, 4.0, 8.0, 16.0]


# ------------------------------------------------------------------------------------ values
def test_a_range_gives_evenly_spaced_values_checked_by_the_settings_rules():
    widths = parse_values("model.width", "2..300 x20 log", "sweep.values")
    assert widths[0] == 2.0 and widths[-1] == 300.0 and all(float(w).is_integer() for w in widths)
    assert widths == sorted(set(widths)) and 15 <= len(widths) <= 20  # whole widths, each once
    assert widths[1:4] == [3.0, 4.0, 6.0]  # log-spaced: 2 * 150 ** (i / 19), rounded
    assert parse_values("noise.label_noise", "0..0.5 x6", "sweep.values") == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert parse_values("model.depth", "1..4", "sweep.values") == [1.0, 2.0, 3.0, 4.0]
    assert parse_values("model.width", "2, 4,8", "sweep.values") == [2.0, 4.0, 8.0]
    # the CLI's --values take the same ranges
    from gengap_tui.headless import parse_sweep_values

    assert parse_sweep_values("optim.lr", "0.001..0.1 x3 log") == [0.001, 0.01, 0.1]


@pytest.mark.parametrize("param, text, says", [
    ("model.width", "0..300 x20 log", "sweep.values: model.width = 0"),
    ("model.width", "300..2 x5", "the range must go up"),
    ("model.width", "2..300 x1", "x2 to x256"),
    ("model.width", "2..300 x20 cube", "'cube' is not a scale (log or lin"),
    ("noise.label_noise", "0..1 x5 log", "a log range needs START > 0"),
    ("noise.label_noise", "0..0.5", "give the number of values, e.g. 0..0.5 x10"),
    ("noise.label_noise", "0..1.5 x4", "label_noise <= 1"),
    ("model.kind", "mlp..cnn1d", "a range needs a number setting"),
    ("model.width", "2..1000 x300", "x2 to x256"),
    ("model.width", "2..", "is not a range"),
])
def test_a_bad_range_is_refused_naming_the_field_and_what_is_allowed(param, text, says):
    with pytest.raises(ValueError) as err:
        parse_values(param, text, "sweep.values")
    assert str(err.value).startswith("sweep.values: ") and says in str(err.value), str(err.value)


def test_point_dir_name_is_the_one_the_sweep_writes():
    from gengap_tui.core.units import value_dir_name

    assert point_dir_name("model.width", 8.0) == value_dir_name("model.width", 8.0) == "width-8"
    assert (point_dir_name("model.width", 8.0, 0.1, "noise.label_noise")
            == value_dir_name("model.width", (8.0, 0.1), "noise.label_noise") == "width-8+label_noise-0.1")


# ------------------------------------------------------------------------------------ the panel
async def type_into(pilot, app, wid: str, text: str) -> None:
    field = app.query_one("#" + wid, Input)
    field.focus()
    field.value = ""
    await pilot.press(*text) if text else None
    await pilot.pause()


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_the_sweep_panel_validates_as_you_type_and_refuses_a_bad_range(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.query_one("#sweep-panel") is not None and not app.form.sweep_errors  # empty: no sweep yet
        await type_into(pilot, app, sweep_id("sweep.values"), "0..300 x20 log")
        err = app.form.sweep_errors["sweep.values"]
        assert "sweep.values: model.width = 0" in err and "1 <= width" in err
        assert app.query_one("#" + sweep_id("sweep.values")).has_class("-invalid")
        assert err in str(app.query_one("#" + sweep_id("sweep.values") + "-err").render())
        await pilot.press("f4")  # refused with the message; nothing starts
        await pilot.pause()
        assert app.source is None and "cannot sweep: sweep.values: model.width = 0" in app.state.status
        assert app.validate_form() is not None  # a run (ctrl+r) is not held up by the sweep panel
        assert app.save_preset("bad-sweep") is None  # ctrl+s saves no sweep but the panel's
        assert not (presets.user_dir() / "bad-sweep.toml").exists()
        await type_into(pilot, app, sweep_id("sweep.param"), "model.widht")
        assert "did you mean model.width" in app.form.sweep_errors["sweep.param"]
        await type_into(pilot, app, sweep_id("sweep.param"), "model.width")
        await type_into(pilot, app, sweep_id("sweep.values"), "2..300 x20 log")
        assert not app.form.sweep_errors
        assert app.cfg.sweep.values[:4] == [2.0, 3.0, 4.0, 6.0] and app.cfg.sweep.values[-1] == 300.0
        assert "values: 2, 3, 4, 6" in str(app.query_one("#sweep-note").render())
        # a grid: a second parameter needs its values, checked by its own rules
        await type_into(pilot, app, sweep_id("sweep.param2"), "noise.label_noise")
        assert "sweep.values2: empty" in app.form.errors["sweep.values2"]
        await type_into(pilot, app, sweep_id("sweep.values2"), "0,2")
        assert "label_noise" in app.form.sweep_errors["sweep.values2"]
        await type_into(pilot, app, sweep_id("sweep.values2"), "0,0.2")
        assert not app.form.sweep_errors and app.cfg.sweep.values2 == [0.0, 0.2]
        # seeds and observe are the run's settings, shown in both places
        await type_into(pilot, app, "sw-seeds", "3")
        assert app.query_one("#f-run--seeds", Input).value == "3" and app.cfg.run.seeds == 3
        await type_into(pilot, app, "f-run--seeds", "2")
        assert app.query_one("#sw-seeds", Input).value == "2"
        app.query_one("#sw-observe").value = True
        await pilot.pause()
        assert app.query_one("#f-early-stopping--observe").value is True and app.cfg.early_stopping.observe
        # ctrl+s saves the panel into the preset's [sweep]
        path = app.save_preset("my-grid")
        saved = read_toml(path)["sweep"]
        assert saved["param"] == "model.width" and saved["values"][:3] == [2.0, 3.0, 4.0]
        assert saved["param2"] == "noise.label_noise" and saved["values2"] == [0.0, 0.2]
        assert build(read_toml(path)).run.seeds == 2
        # loading a preset fills the panel from its [sweep]
        app.load_preset("double-descent")
        await pilot.pause()
        dd = build(presets.load_raw("double-descent")).sweep
        assert app.cfg.sweep.values == dd.values and app.query_one("#" + sweep_id("sweep.param2"), Input).value == ""


@pytest.mark.slow
async def test_a_sweep_set_in_the_panel_starts_with_f4_and_its_points_open(tmp_path):
    app = GengapApp("default", SMALL + ["optim.epochs=3"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_into(pilot, app, sweep_id("sweep.values"), "2..8 x3 log")  # 2, 4, 8
        await pilot.press("f4")
        await pilot.pause()
        assert app.view == "sweep" and isinstance(app.source, LiveSweepSource)
        assert await wait_for(pilot, lambda: app.state.sweep.summary is not None, 120)
        d = app.state.sweep.sweep_dir
        assert await wait_for(pilot, lambda: app.focused is app.query_one("#cursor"), 5)  # the view's keys move it
        await pilot.press("end", "left")
        assert app.state.sweep.point == (4.0, None)
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: isinstance(app.screen, PointScreen), 10)
        screen = app.screen
        assert await wait_for(pilot, lambda: screen.state.run.summary is not None, 10)
        assert screen.source.run_dir == d / "width-4"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PointScreen) and app.view == "sweep"
    assert [r["value"] for r in read_jsonl(d / "sweep.jsonl")] == [2.0, 4.0, 8.0]
    assert read_json(d / "sweep.json")["values"] == [2.0, 4.0, 8.0]


# ------------------------------------------------------------------------------------ the cursor
@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    """A real (tiny) grid written by core.sweep: widths 2..16 x label noise 0, 0.2, 3 epochs, early
    stopping observing (so each point's patience counter moves)."""
    from gengap_tui.core.sweep import Sweep

    cfg = build({"name": "tiny"}, SMALL + ["optim.epochs=3", "early_stopping.enabled=true",
                                            "early_stopping.observe=true", "early_stopping.patience=1"])
    d = tmp_path_factory.mktemp("sweeps") / "grid-tiny"
    Sweep(cfg, "model.width", VALUES, param2="noise.label_noise", values2=[0.0, 0.2]).run(d)
    return d


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_the_cursor_opens_width_n_s_run_and_escape_returns(grid_sweep, tmp_path):
    app = GengapApp(sweep=grid_sweep, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.sweep.summary is not None, 10)
        assert app.view == "sweep"
        assert await wait_for(pilot, lambda: app.focused is app.query_one("#cursor"), 5)  # its keys move the cursor
        await pilot.press("right")  # the first move puts the cursor on the threshold (none: the first value)
        assert app.state.sweep.cursor == (VALUES.index(app.state.sweep.series.threshold(0.0))
                                          if app.state.sweep.series.threshold(0.0) else 0)
        await pilot.press("end", "home", "right", "right")
        assert app.state.sweep.point == (8.0, 0.0)
        await pilot.press("down")  # the grid's next line
        sw = app.state.sweep
        assert sw.point == (8.0, 0.2)
        shown = str(app.query_one("#cursor").render())
        nums = sw.series.latest[(8.0, 0.2)]
        assert "width 8, label_noise 0.2" in shown and f"test {nums['test_err']:.3f}" in shown
        await settle_curves(app, pilot)  # the cursor is a line on the plot at log10(8)
        from conftest import plotted
        import math

        assert any(c[0] == "vline" and c[1][0] == pytest.approx(math.log10(8)) for c in plotted(app))
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: isinstance(app.screen, PointScreen), 10)
        screen = app.screen
        assert await wait_for(pilot, lambda: screen.state.run.summary is not None, 10)
        run_dir = grid_sweep / "width-8+label_noise-0.2"
        rows = read_jsonl(run_dir / "metrics.jsonl")
        assert screen.source.run_dir == run_dir
        assert [r["val_err"] for r in screen.state.run.series.rows] == [r["val_err"] for r in rows]
        assert screen.state.run.events == read_jsonl(run_dir / "events.jsonl")
        patience = str(screen.query_one("#pt-patience").render())
        assert "patience" in patience.lower() and str(rows[-1]["es_wait"]) in patience
        status = str(screen.query_one("#pt-status").render())
        assert "width 8, label_noise 0.2 of the sweep" in status
        await pilot.press("f9")  # the run views cycle on the point's curves
        assert screen.view == "loss" and app.view == "sweep"
        await pilot.press("f2", "ctrl+r")  # what acts on the panels underneath does nothing here
        await pilot.resize_terminal(100, 30)  # (the lab's resize handler finds its panels underneath)
        await pilot.pause()
        assert app.source.kind == "sweep" and isinstance(app.screen, PointScreen) and app.is_running
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PointScreen) and app.view == "sweep"
        assert app.state.sweep.point == (8.0, 0.2)  # the cursor is where it was


async def test_a_sweep_directory_shows_what_it_swept_in_the_sweep_panel(grid_sweep, tmp_path):
    app = GengapApp(sweep=grid_sweep, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)):
        s = app.cfg.sweep
        assert (s.param, s.values, s.param2, s.values2) == ("model.width", VALUES, "noise.label_noise", [0.0, 0.2])
        assert app.query_one("#" + sweep_id("sweep.values"), Input).value == "2,4,8,16"
        assert app.query_one("#" + sweep_id("sweep.param2"), Input).value == "noise.label_noise"
