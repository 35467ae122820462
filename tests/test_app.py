"""Pilot tests of the lab: validation, a live run in the spawned worker, tweaks, keys, quit."""

import pytest

from conftest import plotted, run_from_palette, text_of, wait_for
from gengap_tui.runs import list_runs, load_run, read_jsonl
from gengap_tui.tui.app import NARROW, GengapApp
from gengap_tui.tui.widgets import field_id

pytestmark = pytest.mark.usefixtures("data_cache")

SMALL = ["data.n_train=300", "data.n_val=300", "model.width=32", "device=cpu", "noise.label_noise=0.3",
         "optim.lr=0.01"]


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_bad_value_marks_the_field_and_refuses_start(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        lr = app.query_one("#" + field_id("optim.lr"))
        lr.value = "-1"
        await pilot.pause()
        assert lr.has_class("-invalid")
        err = text_of(app, "#" + field_id("optim.lr") + "-err")
        assert "optim.lr = -1" in err and "0.0 < lr" in err
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.source is None and "cannot start" in app.state.status
        lr.value = "0.01"
        await pilot.pause()
        assert not lr.has_class("-invalid") and not app.errors
    assert list_runs(tmp_path) == []


@pytest.mark.slow
async def test_run_streams_curves_counter_and_early_stop(tmp_path):
    app = GengapApp("default", SMALL + ["early_stopping.patience=2", "optim.epochs=200"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+r")
        assert await wait_for(pilot, lambda: len(app.state.run.series.rows) >= 1)
        assert "patience" in text_of(app, "#patience")
        assert await wait_for(pilot, lambda: app.state.run.summary is not None)
        assert app.state.run.summary["status"] == "early_stopped"
        meter = text_of(app, "#patience")
        assert f"EARLY STOP @ epoch {app.state.run.summary['stop_epoch']} (kept epoch {app.state.run.summary['best_epoch']})" in meter
        # the curves come to show every epoch received (redraws are throttled, not dropped)
        assert await wait_for(pilot, lambda: app._drawn_version[0] == app.state.run.series.version, 10)
        await pilot.press("f9")
        assert app.view == "loss"
        plot = app.query_one("#plot")
        builds = plot.builds
        await pilot.press("f9")  # the memorization view is drawn, from the run's memorization columns
        assert app.view == "memorization"
        lines = {kw.get("label"): args for name, args, kw in plotted(app) if name == "plot"}
        n = len(app.state.run.series.rows)
        assert len(lines["noisy memorized"][0]) == len(lines["clean-train err"][0]) == n
        assert await wait_for(pilot, lambda: plot.builds > builds, 10)
        assert "memorization (label noise)" in "".join(strip.text for strip in plot._strips)
    [d] = list_runs(tmp_path)
    rec = load_run(d)
    assert rec.summary["status"] == "early_stopped" and len(rec.metrics) == len(app.state.run.series.rows)


@pytest.mark.slow
async def test_live_tweak_lands_in_events_and_keys_work_in_inputs(tmp_path):
    app = GengapApp("default", SMALL + ["early_stopping.enabled=false", "optim.epochs=5000"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        lr = app.query_one("#" + field_id("optim.lr"))
        lr.focus()
        await pilot.pause()
        await pilot.press("f9")  # a key bound with priority works while the Input has focus
        assert app.view == "loss"
        await pilot.press("ctrl+r")
        assert await wait_for(pilot, lambda: len(app.state.run.series.rows) >= 2)
        lr.value = "0.002"
        await pilot.press("enter")  # a tweak is sent when the edit is committed
        assert await wait_for(pilot, lambda: any(e.get("event") == "tweaked" for e in app.state.run.events))
        assert await wait_for(pilot, lambda: app.state.run.series.rows[-1]["lr"] == 0.002)
        run_dir = app.source.path
        await pilot.press("ctrl+q")
    events = read_jsonl(run_dir / "events.jsonl")
    assert [e["changes"] for e in events if e["event"] == "tweaked"] == [{"lr": 0.002}]
    rec = load_run(run_dir)
    assert rec.summary["status"] == "cancelled"  # quit mid-run closes the run directory
    assert rec.summary["epochs_run"] == len(rec.metrics) >= 2
    # resumable with `gengap-tui run --resume`, the kept weights saved, the worker's output logged
    assert (run_dir / "checkpoint.pt").is_file() and (run_dir / "model.pt").is_file()
    assert (run_dir / "worker.log").is_file()


async def test_small_terminal_keeps_curves_and_counter(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.query_one("#plot")

        async def fits(cols, rows):
            """At cols x rows the status bar, the curves and the counter are on screen, the curves
            are rebuilt at their new size, and the panels show from NARROW columns up."""
            assert await wait_for(pilot, lambda: app.size == (cols, rows), 10)
            assert await wait_for(pilot, lambda: len(plot._strips) == plot.size.height > 0 and all(
                s.cell_length == plot.size.width for s in plot._strips), 10), (cols, rows)
            for sel in ("#status", "#plot", "#patience"):
                r = app.query_one(sel).region
                assert r.width >= min(10, cols // 4) and r.height >= 1, (sel, r)
                assert r.x >= 0 and r.y >= 0 and r.right <= cols and r.bottom <= rows, (sel, r, cols, rows)
            assert app.query_one("#panels").display == (cols >= NARROW)

        await fits(80, 24)
        await pilot.resize_terminal(60, 20)
        await fits(60, 20)
        await pilot.resize_terminal(120, 36)
        await fits(120, 36)


from conftest import ROOT  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "runs"


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_replay_shows_a_recorded_run_through_the_same_screen(tmp_path):
    from gengap_tui.runs import load_run

    rec = load_run(FIXTURES / "label-noise-es")
    app = GengapApp(replay=FIXTURES / "label-noise-es", speed=0, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.run.summary is not None, 10)
        assert len(app.state.run.series.rows) == len(rec.metrics)  # the summary comes last
        s = rec.summary
        assert f"EARLY STOP @ epoch {s['stop_epoch']} (kept epoch {s['best_epoch']})" in text_of(app, "#patience")
        assert app.query_one("#" + field_id("noise.label_noise")).value == "0.2"
        await pilot.press("f9", "f9")
        assert app.view == "memorization"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_a_replay_in_progress_is_not_tweaked(tmp_path):
    app = GengapApp(replay=FIXTURES / "label-noise-es", speed=1e-6, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.source is not None and not app.source.finished and app.state.run.summary is None
        app.query_one("#" + field_id("optim.lr")).value = "0.02"
        await pilot.pause()
        assert "replay: start (ctrl+r) to train with these settings" in app.state.status


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_compare_overlays_labelled_runs(tmp_path):
    app = GengapApp(replay=FIXTURES / "label-noise-es", speed=0, runs_dir=FIXTURES,
                    compare=[str(FIXTURES / "label-noise-wd")])
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.run.summary is not None, 10)
        [(label, series)] = app.compared
        assert label == "decoupled=on wd=0.01" and series.rows
        assert app.compare_self_label == "decoupled=off wd=0"
        await pilot.press("f3")
        await pilot.pause()
        from textual.widgets import SelectionList

        sel = app.screen.query_one(SelectionList)
        assert sel.option_count == 2 and len(sel.selected) == 1
        sel.select_all()
        await pilot.press("enter")
        await pilot.pause()
        assert len(app.compared) == 2


async def test_narrow_terminal_collapses_panels_into_a_drawer(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not app.query_one("#panels").display
        assert app.query_one("#plot").region.width > 70
        await pilot.press("f2")
        await pilot.pause()
        assert app.query_one("#panels").display


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_command_palette_offers_the_lab_actions(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await run_from_palette(pilot, "next plot", "Next plot")
        assert await wait_for(pilot, lambda: app.view == "loss", 10)


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_load_preset_fills_the_panels(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.load_preset("dropout")
        await pilot.pause()
        assert app.query_one("#" + field_id("regularization.dropout")).value == "0.3"
        assert app.cfg.regularization.input_noise == 0.1 and not app.errors
        await pilot.press("ctrl+o")
        await pilot.pause()
        from textual.widgets import OptionList

        assert app.screen.query_one(OptionList).option_count >= 6
        await pilot.press("escape")


def test_screenshot_command_writes_an_svg(tmp_path):
    from gengap_tui.cli import main

    out = tmp_path / "shot.svg"
    assert main(["screenshot", str(FIXTURES / "label-noise-es"), "--out", str(out), "--size", "100x30"]) == 0
    svg = out.read_text()
    assert svg.startswith("<svg") and "EARLY" in svg and "STOP" in svg


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_save_preset_asks_for_a_name_and_round_trips(tmp_path):
    from gengap_tui import presets

    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one("#" + field_id("regularization.weight_decay")).value = "0.02"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        name_input = app.screen.query_one("#save-name")
        assert name_input.value == "default-mine"  # never shadows a packaged preset by default
        name_input.value = "bad name!"
        await pilot.press("enter")
        await pilot.pause()
        assert "letters, digits" in str(app.screen.query_one("#save-note").render())
        name_input.value = "my-wd"
        await pilot.press("enter")
        await pilot.pause()
        assert "saved preset my-wd" in app.state.status
    cfg = presets.load("my-wd")
    assert cfg.regularization.weight_decay == 0.02 and cfg.name == "my-wd"
    assert cfg.data.n_train == 300  # the --set overrides are part of what was saved


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_attach_follows_a_live_run_and_steers_it_through_the_control_file(tmp_path):
    import json

    from gengap_tui.runs import read_jsonl

    d = tmp_path / "20260101T000000Z-live-abcdef"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"name": "live", "optim": {"epochs": 50}}))
    row = {"epoch": 1, "train_loss": 2.0, "train_err": 0.8, "val_loss": 2.1, "val_err": 0.82, "gap_loss": 0.1,
           "gap_err": 0.02, "lr": 0.01, "epoch_seconds": 0.1, "samples_per_s": 1000, "es_wait": 0,
           "es_best": 0.82, "es_best_epoch": 1}
    (d / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        await pilot.press("a")  # attach to the highlighted (only) run
        assert await wait_for(pilot, lambda: len(app.state.run.series.rows) == 1, 5)
        assert app.query_one("#" + field_id("optim.epochs")).value == "50"
        with open(d / "metrics.jsonl", "a") as f:
            f.write(json.dumps({**row, "epoch": 2}) + "\n")
        assert await wait_for(pilot, lambda: len(app.state.run.series.rows) == 2, 5)
        lr = app.query_one("#" + field_id("optim.lr"))
        lr.focus()
        lr.value = "0.002"
        await pilot.press("enter")  # a tweak is sent when the edit is committed
        await pilot.press("f6")
        await pilot.press("f7")
        await pilot.pause()
    cmds = read_jsonl(d / "control.jsonl")
    assert [c["cmd"] for c in cmds] == ["tweak", "pause", "stop"]
    assert cmds[0]["changes"] == {"lr": 0.002}


@pytest.mark.slow
async def test_a_tweak_is_sent_when_committed_never_half_typed(tmp_path):
    """Changing patience 50 -> 40 by typing must not send 5 on the way (it would end the run)."""
    app = GengapApp("default", SMALL + ["early_stopping.patience=50", "early_stopping.observe=true",
                                        "optim.epochs=100000"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+r")
        assert await wait_for(pilot, lambda: len(app.state.run.series.rows) >= 2)
        patience = app.query_one("#" + field_id("early_stopping.patience"))
        patience.focus()
        patience.cursor_position = len(patience.value)
        await pilot.press("backspace", "backspace", "4")
        assert await wait_for(pilot, lambda: "enter applies 4" in app.state.status, 10), app.state.status
        assert app.state.run.applied["early_stopping.patience"] == 50
        await pilot.press("0", "enter")
        assert await wait_for(pilot, lambda: any(e.get("event") == "tweaked" for e in app.state.run.events))
        await pilot.press("tab")  # leaving the field commits nothing new
        lr = app.query_one("#" + field_id("optim.lr"))
        lr.focus()
        await pilot.pause()
        lr.value = "abc"
        await pilot.press("tab")  # an invalid committed value is not sent: the field shows the run's
        assert await wait_for(pilot, lambda: "not applied" in app.state.status, 10), app.state.status
        assert lr.value == "0.01"
        run_dir = app.source.path
        await pilot.press("ctrl+q")
    tweaks = [e["changes"] for e in read_jsonl(run_dir / "events.jsonl") if e["event"] == "tweaked"]
    assert tweaks == [{"patience": 40}]


async def test_compared_runs_are_drawn_from_the_first_frame(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path, compare=[str(FIXTURES / "label-noise-wd")])
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.query_one("#plot").builds >= 1, 10)
        labels = [kw.get("label") for name, _, kw in plotted(app) if name == "plot"]
        assert any(label and label.startswith("val_err ") for label in labels), labels


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
async def test_the_status_message_is_always_on_screen(tmp_path, size):
    """A long head line (a long run path) is shortened, never wrapped over the message."""
    app = GengapApp(replay=FIXTURES / "label-noise-es", speed=0, runs_dir=tmp_path)
    async with app.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: app.state.run.summary is not None, 10)
        bar = app.query_one("#status")
        bar.show(bar.head.replace("label-noise-es", "a-very-long-run-directory-name-" * 3 + "label-noise-es"),
                 bar.message)
        await pilot.pause()
        lines = str(bar.render()).split("\n")
        assert len(lines) == 2 and all(len(line) <= bar.content_region.width for line in lines)
        assert lines[1].startswith("early_stopped")
        lr = app.query_one("#" + field_id("optim.lr"))
        lr.value = "abc"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert str(bar.render()).split("\n")[1].startswith("cannot start: 1 invalid field(s)")


async def test_a_field_error_is_shown_whole(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(180, 50)) as pilot:
        app.query_one("#" + field_id("optim.lr")).value = "abc"
        # the field's error label is mounted the first time it has a message
        assert await wait_for(pilot, lambda: app.query("#" + field_id("optim.lr") + "-err")
                              and "optim.lr" in app.errors, 10)
        err = app.query_one("#" + field_id("optim.lr") + "-err")
        await pilot.pause()
        message = app.errors["optim.lr"]
        assert "0.0 < lr" in message or "number" in message
        # every character of the message has a cell: it wraps inside the panel, nothing is cut
        assert err.region.width <= app.query_one("#panels").region.width
        assert err.region.height * err.content_region.width >= len(message) and err.region.height >= 2


async def test_a_checkbox_reads_without_colour(tmp_path):
    app = GengapApp("default", SMALL + ["baselines.knn=true", "baselines.ntk=false"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        on = str(app.query_one("#" + field_id("baselines.knn")).render())
        off = str(app.query_one("#" + field_id("baselines.ntk")).render())
        assert "X" in on and "X" not in off
        app.query_one("#" + field_id("baselines.ntk")).toggle()
        await pilot.pause()
        assert "X" in str(app.query_one("#" + field_id("baselines.ntk")).render())


async def test_palette_says_quit_once_and_attach_to_a_finished_run_says_so(tmp_path):
    import shutil

    from textual.command import CommandPalette

    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        from gengap_tui.tui.commands import LabCommands

        titles += [t for t, _, _ in LabCommands.COMMANDS]
        assert titles.count("Quit") == 1
        done = tmp_path / "done-run"
        shutil.copytree(FIXTURES / "label-noise-es", done)
        app.attach_to(done)
        await pilot.pause()
        assert "has already ended (early_stopped): nothing to steer" in app.state.status
        assert not isinstance(app.screen, CommandPalette)


def test_compare_labels_name_the_section_of_an_ambiguous_setting():
    from gengap_tui.compare import diff_labels

    a = {"early_stopping": {"enabled": True}, "ratt": {"enabled": False}}
    b = {"early_stopping": {"enabled": False}, "ratt": {"enabled": False}}
    assert diff_labels([a, b]) == ["early_stopping.enabled=on", "early_stopping.enabled=off"]


async def test_the_footer_fits_100_columns(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        shown = [b for b in app.BINDINGS if b.show]
        # each key as the footer draws it: " key description " (ctrl+x as ^x), and the palette's
        width = sum(len(b.key.replace("ctrl+", "^")) + len(b.description) + 3 for b in shown) + len(" ^p palette ")
        assert width <= 100, width
        from gengap_tui.tui.commands import LabCommands

        in_palette = {action for _, action, _ in LabCommands.COMMANDS}
        assert all(b.action in in_palette for b in app.BINDINGS if not b.show)  # hidden, not lost
